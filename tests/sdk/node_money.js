'use strict';
// Drive the diesel-mangopay sandbox with the official Mangopay Node SDK
// (`mangopay4-nodejs-sdk`) through the money flows: wallets, transfers, an IBAN
// bank account, pay-outs and the transaction lists. Funds arrive, and pay-outs
// settle, through the sandbox's control requests (plain HTTP).
//
// Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
// SANDBOX_API_KEY; NODE_PATH must reach the installed SDK. Prints each step;
// exits non-zero on the first mismatch.

const mangopay = require('mangopay4-nodejs-sdk');

const BASE_URL = process.env.SANDBOX_URL.replace(/\/+$/, '');
const CLIENT_ID = process.env.SANDBOX_CLIENT_ID;
const API_KEY = process.env.SANDBOX_API_KEY;

// The default error handler console.errors every non-2xx; the flow provokes some.
const quiet = () => {};
const api = new mangopay({clientId: CLIENT_ID, clientApiKey: API_KEY, baseUrl: BASE_URL, errorHandler: quiet});

class Mismatch extends Error {}

function check(condition, what) {
    if (!condition) {
        throw new Mismatch(what);
    }
    console.log('  ok: ' + what);
}

// Awaits a call that must fail and returns the error body it was rejected with.
async function expectRejection(promise, what) {
    let body;
    try {
        await promise;
    } catch (err) {
        body = err;
    }
    check(body !== undefined && body !== null && typeof body === 'object', what + ' is rejected with an error body');
    return body;
}

// Every answer's status, recorded through axios (the SDK's HTTP client).
const exchanges = [];
const axios = require(require.resolve('axios', {paths: [require.resolve('mangopay4-nodejs-sdk')]}));
axios.interceptors.response.use(
    (response) => {
        exchanges.push({method: response.config.method.toUpperCase(), url: response.config.url, status: response.status, body: response.data});
        return response;
    },
    (error) => {
        if (error.response) {
            exchanges.push({method: error.config.method.toUpperCase(), url: error.config.url, status: error.response.status});
        }
        return Promise.reject(error);
    }
);

function last() {
    if (exchanges.length === 0) {
        throw new Mismatch('no HTTP exchange was recorded');
    }
    return exchanges[exchanges.length - 1];
}

// A control request: plain HTTP (fetch, not the SDK), no authentication.
async function control(path, body) {
    const response = await fetch(BASE_URL + path, {
        method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)
    });
    return {status: response.status, body: await response.json()};
}

function parisAddress() {
    return {AddressLine1: '3 rue de la Cite', AddressLine2: 'Appartement 7', City: 'Paris',
        Region: 'Ile-de-France', PostalCode: '75004', Country: 'FR'};
}

async function naturalOwner(firstName) {
    return api.Users.create(new api.models.UserNatural({
        FirstName: firstName, LastName: 'Smith', Email: `${firstName.toLowerCase()}@example.com`,
        Birthday: 652117514, Nationality: 'FR', CountryOfResidence: 'FR', Address: parisAddress(),
        UserCategory: 'OWNER', TermsAndConditionsAccepted: true, Tag: 'node sdk money'
    }));
}

function eur(amount) {
    return {Currency: 'EUR', Amount: amount};
}

async function balance(walletId) {
    return (await api.Wallets.get(walletId)).Balance.Amount;
}

async function main() {
    console.log(`Node SDK against ${BASE_URL} (client ${CLIENT_ID})`);

    console.log('two users, one EUR wallet each');
    const alice = await naturalOwner('Alice');
    const bob = await naturalOwner('Bob');
    const alices = await api.Wallets.create({Owners: [alice.Id], Currency: 'EUR', Description: "Alice's EUR wallet", Tag: 'node alice'});
    check(last().method === 'POST' && last().status === 200, 'POST /wallets answered 200');
    check(alices.Id.startsWith('wlt_m_'), `Id ${alices.Id} has the wlt_m_ prefix`);
    check(JSON.stringify(alices.Owners) === JSON.stringify([alice.Id]), 'Owners holds the owner\'s Id');
    check(alices.Balance.Currency === 'EUR' && alices.Balance.Amount === 0, 'the Balance starts at EUR 0');
    check(alices.FundsType === 'DEFAULT', 'FundsType is DEFAULT');
    check(Number.isInteger(alices.CreationDate), 'CreationDate is an integer timestamp');
    const bobs = await api.Wallets.create({Owners: [bob.Id], Currency: 'EUR', Description: "Bob's EUR wallet", Tag: 'node bob'});

    console.log('view, list and update a wallet');
    const viewed = await api.Wallets.get(alices.Id);
    check(viewed.Description === "Alice's EUR wallet" && viewed.Tag === 'node alice', 'GET /wallets/{Id} reads it back');
    const listed = await api.Users.getWallets(alice.Id, {parameters: {Page: 1, Per_Page: 10, Sort: 'CreationDate:DESC'}});
    check(last().url.includes(`/users/${alice.Id}/wallets`), 'the SDK listed /users/{Id}/wallets');
    check(listed.length === 1 && listed[0].Id === alices.Id, 'Alice\'s list holds her wallet only');
    // The SDK sends the whole object back; only Description and Tag change.
    const updated = await api.Wallets.update(Object.assign({}, viewed, {Description: "Alice's main wallet", Tag: 'node alice updated'}));
    check(last().method === 'PUT' && last().status === 200, 'PUT /wallets/{Id} answered 200');
    check(updated.Description === "Alice's main wallet" && updated.Tag === 'node alice updated', 'the update is answered');
    check(updated.Currency === 'EUR' && updated.Owners[0] === alice.Id, 'Currency and Owners are unchanged');
    let err = await expectRejection(api.Wallets.create({Owners: [alice.Id, bob.Id], Currency: 'EUR', Description: 'shared'}), 'two owners');
    check(last().status === 400 && err.Type === 'param_error', 'it answers 400 param_error');
    check(err.errors.Owners === "Owners doesn't support multiple values for the moment", 'errors.Owners as documented');

    console.log('funds arrive through the control request');
    const credited = await control(`/_sandbox/wallets/${alices.Id}/credit`, {Amount: 10000});
    check(credited.status === 200 && credited.body.Balance.Amount === 10000, 'the wallet holds EUR 100.00');
    check(await balance(alices.Id) === 10000, 'the SDK sees the new balance');

    console.log('a transfer moves money');
    const transfer = await api.Transfers.create({
        ScaContext: 'USER_NOT_PRESENT', AuthorId: alice.Id, DebitedFunds: eur(3000), Fees: eur(100),
        DebitedWalletId: alices.Id, CreditedWalletId: bobs.Id, Tag: 'node transfer'
    });
    check(last().method === 'POST' && last().status === 200, 'POST /transfers answered 200');
    check(transfer.Id.startsWith('xfer_m_'), `Id ${transfer.Id} has the xfer_m_ prefix`);
    check(transfer.Status === 'SUCCEEDED' && transfer.ResultCode === '000000', 'the transfer SUCCEEDED');
    check(transfer.ScaContext === 'USER_NOT_PRESENT', 'ScaContext is echoed');
    check(transfer.CreditedUserId === bob.Id, 'CreditedUserId is the credited wallet\'s owner');
    check(transfer.CreditedFunds.Amount === 2900, 'CreditedFunds = DebitedFunds - Fees');
    check(Number.isInteger(transfer.ExecutionDate), 'ExecutionDate is set');
    check(await balance(alices.Id) === 7000 && await balance(bobs.Id) === 2900, '7000 left, 2900 credited');
    const viewedTransfer = await api.Transfers.get(transfer.Id);
    check(viewedTransfer.Tag === 'node transfer' && viewedTransfer.Type === 'TRANSFER', 'GET /transfers/{Id} reads it back');

    console.log('a transfer the wallet cannot cover is created FAILED');
    const failed = await api.Transfers.create({
        AuthorId: alice.Id, DebitedFunds: eur(1000000), Fees: eur(0),
        DebitedWalletId: alices.Id, CreditedWalletId: bobs.Id, Tag: 'node too much'
    });
    check(last().status === 200, 'it answers 200, not an HTTP error');
    check(failed.Status === 'FAILED' && failed.ResultCode === '001001', 'Status FAILED, ResultCode 001001');
    check(failed.ResultMessage === 'Unsufficient wallet balance', 'ResultMessage as documented');
    check(failed.ExecutionDate === null, 'no ExecutionDate');
    check(await balance(alices.Id) === 7000, 'nothing moved');

    console.log('an IBAN bank account and a pay-out');
    const account = await api.Users.createBankAccount(alice.Id, {
        Type: 'IBAN', OwnerName: 'Alice Smith', OwnerAddress: parisAddress(),
        IBAN: 'FR7630004000031234567890143', BIC: 'BNPAFRPP', Tag: 'node account'
    });
    check(last().method === 'POST' && last().status === 200, `POST ${last().url} answered 200`);
    const payout = await api.PayOuts.create({
        PaymentType: 'BANK_WIRE', AuthorId: alice.Id, DebitedFunds: eur(2000), Fees: eur(20),
        DebitedWalletId: alices.Id, BankAccountId: account.Id, BankWireRef: 'node ref',
        PayoutModeRequested: 'STANDARD', Tag: 'node payout'
    });
    check(last().method === 'POST' && last().status === 200, 'POST /payouts/bankwire/ answered 200');
    check(payout.Id.startsWith('po_m_'), `Id ${payout.Id} has the po_m_ prefix`);
    check(payout.Status === 'CREATED' && payout.ExecutionDate === null, 'the pay-out is CREATED, no ExecutionDate');
    check(payout.ModeRequested === 'STANDARD' && payout.PaymentType === 'BANK_WIRE', 'ModeRequested STANDARD, PaymentType BANK_WIRE');
    check(payout.CreditedFunds.Amount === 1980, 'CreditedFunds = DebitedFunds - Fees');
    check(await balance(alices.Id) === 5000, 'the wallet is debited at once');
    const viewedPayout = await api.PayOuts.get(payout.Id);
    check(viewedPayout.Status === 'CREATED' && !('ModeApplied' in last().body), 'GET /payouts/{Id}: CREATED, without the payout mode');
    const withMode = await api.PayOuts.getBankwire(payout.Id);
    check(withMode.ModeApplied === 'PENDING_RESPONSE', 'GET /payouts/bankwire/{Id} shows ModeApplied');

    console.log('the pay-out settles through the control request');
    const settled = await control(`/_sandbox/payouts/${payout.Id}/settle`, {Status: 'SUCCEEDED'});
    check(settled.status === 200 && settled.body.Status === 'SUCCEEDED', 'the control request settled it');
    const done = await api.PayOuts.get(payout.Id);
    check(done.Status === 'SUCCEEDED' && done.ResultCode === '000000' && Number.isInteger(done.ExecutionDate),
        'the SDK sees it SUCCEEDED with an ExecutionDate');
    const refused = await api.PayOuts.create({
        PaymentType: 'BANK_WIRE', AuthorId: alice.Id, DebitedFunds: eur(1000), Fees: eur(0),
        DebitedWalletId: alices.Id, BankAccountId: account.Id, Tag: 'node refused'
    });
    check(await balance(alices.Id) === 4000, 'a second pay-out debits the wallet');
    const failedPayout = await control(`/_sandbox/payouts/${refused.Id}/settle`,
        {Status: 'FAILED', ResultCode: '121005', ResultMessage: 'Refused due to the Fraud Policy'});
    check(failedPayout.status === 200 && failedPayout.body.ResultCode === '121005', 'it fails with the result asked for');
    check(await balance(alices.Id) === 5000, 'its funds are back in the wallet');

    console.log('instant pay-out eligibility');
    const eligibility = await api.PayOuts.checkEligibility({
        AuthorId: alice.Id, DebitedFunds: eur(100), Fees: eur(0), DebitedWalletId: alices.Id,
        BankAccountId: account.Id, PayoutModeRequested: 'INSTANT_PAYMENT'
    });
    check(eligibility.InstantPayout && eligibility.InstantPayout.IsReachable === true, 'the destination bank is reachable');
    const instant = await api.PayOuts.create({
        PaymentType: 'BANK_WIRE', AuthorId: alice.Id, DebitedFunds: eur(500), Fees: eur(0),
        DebitedWalletId: alices.Id, BankAccountId: account.Id, PayoutModeRequested: 'INSTANT_PAYMENT', Tag: 'node instant'
    });
    check(instant.Status === 'SUCCEEDED' && instant.ModeApplied === 'INSTANT_PAYMENT', 'an instant pay-out goes at once');

    console.log('the transaction lists find everything by Tag, newest first');
    const newest = await api.Wallets.getTransactions(alices.Id, {parameters: {Sort: 'CreationDate:DESC', Per_Page: 10}});
    check(last().url.includes(`/wallets/${alices.Id}/transactions`), 'the SDK listed /wallets/{Id}/transactions');
    const tags = newest.map((t) => t.Tag);
    check(JSON.stringify(tags) === JSON.stringify(['node instant', 'node refused', 'node payout', 'node too much', 'node transfer']),
        `the wallet's transactions, newest first: ${tags}`);
    const payouts = await api.Wallets.getTransactions(alices.Id, {parameters: {Type: 'PAYOUT', Status: 'FAILED'}});
    check(payouts.length === 1 && payouts[0].Id === refused.Id, 'Type=PAYOUT&Status=FAILED keeps the refused pay-out');
    const authored = await api.Users.getTransactions(alice.Id, {parameters: {Status: 'SUCCEEDED'}, resolveWithFullResponse: true});
    check(authored.headers['x-number-of-items'] === '3', 'X-Number-Of-Items counts what Alice authored and went through');
    const afterDate = transfer.CreationDate - 1;
    const recent = await api.Users.getTransactions(alice.Id, {parameters: {AfterDate: afterDate, BeforeDate: 4102444800}});
    check(recent.length === 5, 'AfterDate and BeforeDate keep every transaction of the flow');
    err = await expectRejection(api.Wallets.getTransactions(alices.Id, {parameters: {Status: 'LOST'}}), 'an unknown Status');
    check(last().status === 400 && err.Type === 'param_error', 'it answers 400 param_error');

    console.log(`node_money: all checks passed (${exchanges.length} HTTP exchanges)`);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    console.error('node_money: FAILED');
    process.exit(1);
});
