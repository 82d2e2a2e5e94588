'use strict';
// Drive the diesel-mangopay sandbox with the official Mangopay Node SDK
// (`mangopay4-nodejs-sdk`) through the bank account and recipient flows: legacy bank
// accounts of every type, their view, list and deactivation, and recipients from their
// schema to their deactivation, one of them made ACTIVE by the sandbox's control request
// (plain HTTP, as it is not Mangopay's API).
//
// Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
// SANDBOX_API_KEY; NODE_PATH must reach the installed SDK. Prints each step;
// exits non-zero on the first mismatch.

const crypto = require('crypto');
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

// Every exchange, recorded through axios (the SDK's HTTP client): what was sent and answered.
const exchanges = [];
const axios = require(require.resolve('axios', {paths: [require.resolve('mangopay4-nodejs-sdk')]}));
axios.interceptors.response.use(
    (response) => {
        exchanges.push({method: response.config.method.toUpperCase(), url: response.config.url,
            status: response.status, body: response.data, headers: response.headers});
        return response;
    },
    (error) => {
        if (error.response) {
            exchanges.push({method: error.config.method.toUpperCase(), url: error.config.url,
                status: error.response.status, body: error.response.data});
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

function parisAddress() {
    return {AddressLine1: '3 rue de la Cite', AddressLine2: 'Appartement 7', City: 'Paris',
        Region: 'Ile de France', PostalCode: '75004', Country: 'FR'};
}

function londonAddress() {
    return {AddressLine1: '10 Kingsway', AddressLine2: null, City: 'London', Region: null,
        PostalCode: 'WC2B 6LH', Country: 'GB'};
}

// A control request of the sandbox: no authentication, JSON in and out.
async function control(path, body) {
    const response = await fetch(BASE_URL + path, {
        method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)
    });
    return {status: response.status, body: await response.json()};
}

async function bankAccounts(owner) {
    console.log('create an IBAN bank account');
    const iban = await api.Users.createBankAccount(owner.Id, {
        Type: 'IBAN', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(),
        IBAN: 'FR7630004000031234567890143', BIC: 'BNPAFRPP', Tag: 'node sdk iban'
    });
    check(last().method === 'POST' && last().status === 200, 'POST answered 200');
    check(last().url.endsWith(`/users/${owner.Id}/bankaccounts/iban`), `the SDK called ${last().url}`);
    check(iban.Id.startsWith('bankacc_m_'), `Id ${iban.Id} has the bankacc_m_ prefix`);
    check(iban.Active === true && iban.Type === 'IBAN' && iban.UserId === owner.Id, 'an active IBAN account of the user');
    check(Number.isInteger(iban.CreationDate), 'CreationDate is an integer timestamp');
    check(iban.BIC === 'BNPAFRPP' && iban.Tag === 'node sdk iban', 'BIC and Tag round-trip');

    console.log('create GB, US, CA and OTHER bank accounts');
    // GB with the SDK's model and details class: the SDK sends the details both flattened
    // and under `Details`.
    const gb = await api.Users.createBankAccount(owner.Id, new api.models.BankAccount({
        Type: 'GB', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), Tag: 'node sdk gb',
        Details: new api.models.BankAccountDetailsGB({AccountNumber: '11696419', SortCode: '010039'})
    }));
    check(last().url.endsWith('/bankaccounts/gb') && gb.Type === 'GB' && gb.SortCode === '010039',
        'a GB account from the SDK model');
    const us = await api.Users.createBankAccount(owner.Id, {
        Type: 'US', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), AccountNumber: '11696419',
        ABA: '071000288', DepositAccountType: 'CHECKING', Tag: 'node sdk us'
    });
    check(us.Type === 'US' && us.ABA === '071000288' && us.DepositAccountType === 'CHECKING', 'a US account');
    const ca = await api.Users.createBankAccount(owner.Id, {
        Type: 'CA', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), AccountNumber: '11696419',
        InstitutionNumber: '614', BranchCode: '00152', BankName: 'The Bank', Tag: 'node sdk ca'
    });
    check(ca.Type === 'CA' && ca.BankName === 'The Bank', 'a CA account');
    const other = await api.Users.createBankAccount(owner.Id, {
        Type: 'OTHER', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), AccountNumber: '11696419',
        BIC: 'BNPAFRPP', Country: 'FR', Tag: 'node sdk other'
    });
    check(other.Type === 'OTHER' && other.Country === 'FR', 'an OTHER account');

    console.log('validation errors name the field');
    let err = await expectRejection(api.Users.createBankAccount(owner.Id, {
        Type: 'IBAN', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), IBAN: 'FR7630004000031234567890144'
    }), 'a bad IBAN checksum');
    check(last().status === 400 && err.Type === 'param_error', 'it answers 400 param_error');
    check(err.errors.IBAN === 'The value is not a valid IBAN', `errors: ${JSON.stringify(err.errors)}`);
    err = await expectRejection(api.Users.createBankAccount(owner.Id, {
        Type: 'IBAN', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), IBAN: 'FR7630004000031234567890143', BIC: 'BNP'
    }), 'a malformed BIC');
    check('BIC' in err.errors, `errors names BIC: ${JSON.stringify(err.errors)}`);

    console.log('view and list the bank accounts');
    const viewed = await api.Users.getBankAccount(owner.Id, iban.Id);
    check(viewed.Id === iban.Id && viewed.IBAN === iban.IBAN, 'GET answers the IBAN account');
    const all = await api.Users.getBankAccounts(owner.Id);
    check(JSON.stringify(all.map((a) => a.Id)) === JSON.stringify([iban.Id, gb.Id, us.Id, ca.Id, other.Id]),
        'the list holds the five accounts, oldest first');
    const newest = await api.Users.getBankAccounts(owner.Id, {parameters: {Sort: 'CreationDate:DESC', Per_Page: 2, Page: 1}});
    check(JSON.stringify(newest.map((a) => a.Id)) === JSON.stringify([other.Id, ca.Id]),
        'Sort=CreationDate:DESC with Per_Page=2 gives the two newest');
    check(last().headers['x-number-of-items'] === '5', 'X-Number-Of-Items counts all five');

    console.log('deactivate the GB account, for good');
    const deactivated = await api.Users.deactivateBankAccount(owner.Id, gb.Id);
    check(last().method === 'PUT' && last().status === 200 && deactivated.Active === false, 'PUT answers Active false');
    const inactive = await api.Users.getBankAccounts(owner.Id, {parameters: {Active: false}});
    check(inactive.length === 1 && inactive[0].Id === gb.Id, 'Active=false lists only the deactivated one');

    console.log('a keyed create is replayed by GET /responses/{key}');
    const key = crypto.randomUUID();
    const keyed = await api.Users.createBankAccount(owner.Id, {
        Type: 'IBAN', OwnerName: 'Alex Smith', OwnerAddress: parisAddress(), IBAN: 'DE89370400440532013000', Tag: 'node sdk keyed'
    }, {headers: {'Idempotency-Key': key}});
    const replay = await api.Idempotency.get(key);
    check(replay.StatusCode === '200' && replay.Resource.Id === keyed.Id, 'the stored answer names the account');
}

async function recipients(owner, payer) {
    console.log('payout methods and schema');
    const methods = await api.Recipients.getPayoutMethods('US', 'EUR');
    check(JSON.stringify(methods.AvailablePayoutMethods) === JSON.stringify(['InternationalBankTransfer']),
        'EUR to US: international only');
    const schema = await api.Recipients.getSchema('LocalBankTransfer', 'Individual', 'USD', 'US');
    check(schema.LocalBankTransfer.USD.ABA.Pattern === '^\\d{9}$', 'the USD local schema gives the ABA rule');
    check(schema.IndividualRecipient.Address.Region.Required === true, 'a USD local address needs a Region');

    const usd = {
        DisplayName: 'Alex Smith USD account', PayoutMethodType: 'LocalBankTransfer', RecipientType: 'Individual',
        Currency: 'USD', Country: 'US', Tag: 'node sdk recipient',
        IndividualRecipient: {FirstName: 'Alex', LastName: 'Smith', Address: {
            AddressLine1: '900 Williams Ave', AddressLine2: null, City: 'New York', Region: 'NY',
            PostalCode: '10025', Country: 'US'}},
        LocalBankTransfer: {USD: {AccountNumber: '11696419', ABA: '071000288'}}
    };

    console.log('validate recipient data');
    await api.Recipients.validate(usd, owner.Id);
    check(last().status === 200 && last().url.endsWith('/recipients/validate'), 'a valid body answers 200');
    let err = await expectRejection(api.Recipients.validate(Object.assign({}, usd, {DisplayName: 'Smith & Sons'}), owner.Id),
        'a DisplayName with &');
    check(last().status === 400 && err.Errors.DisplayName === 'INVALID_FORMAT', `Errors: ${JSON.stringify(err.Errors)}`);

    console.log('create a PAYOUT recipient: PENDING with an SCA link');
    const created = await api.Recipients.create(usd, owner.Id);
    check(last().method === 'POST' && last().status === 201, 'POST /users/{Id}/recipients answered 201');
    check(created.Id.startsWith('rec_') && created.Status === 'PENDING', `recipient ${created.Id} is PENDING`);
    check(created.RecipientScope === 'PAYOUT', 'RecipientScope defaults to PAYOUT');
    check(created.PendingUserAction && created.PendingUserAction.RedirectUrl.startsWith('https://'),
        'PendingUserAction.RedirectUrl is an https link');
    err = await expectRejection(api.Recipients.create(usd, payer.Id), 'a PAYOUT recipient for a PAYER');
    check(last().status === 400 && err.Type === 'invalid_action', 'it answers 400 invalid_action');

    console.log('create a GBP local PAYIN recipient for the PAYER');
    const payin = await api.Recipients.create({
        DisplayName: 'Alex Smith GBP pay-in account', PayoutMethodType: 'LocalBankTransfer', RecipientType: 'Individual',
        Currency: 'GBP', RecipientScope: 'PAYIN',
        IndividualRecipient: {FirstName: 'Alex', LastName: 'Smith', Address: londonAddress()},
        LocalBankTransfer: {GBP: {SortCode: '200000', AccountNumber: '55779911'}}
    }, payer.Id);
    check(payin.Country === 'GB' && payin.RecipientScope === 'PAYIN' && !('PendingUserAction' in last().body),
        'a PAYIN recipient, its Country from the currency, without SCA link');

    console.log('view and list');
    const viewed = await api.Recipients.get(created.Id);
    check(viewed.Id === created.Id && viewed.LocalBankTransfer.USD.ABA === '071000288', 'GET /recipients/{Id} answers it');
    const listed = await api.Recipients.getUserRecipients(owner.Id);
    check(listed.length === 1 && listed[0].Id === created.Id && listed[0].Status === 'PENDING',
        'the user lists its PAYOUT recipient');
    const payins = await api.Recipients.getUserRecipients(payer.Id, {parameters: {RecipientScope: 'PAYIN'}});
    check(payins.length === 1 && payins[0].Id === payin.Id, 'RecipientScope=PAYIN lists the PAYIN one');

    console.log('the control request completes the SCA');
    const answer = await control(`/_sandbox/recipients/${created.Id}/status`, {Status: 'ACTIVE'});
    check(answer.status === 200 && answer.body.Status === 'ACTIVE', 'the control request answers the ACTIVE recipient');
    const active = await api.Recipients.get(created.Id);
    check(active.Status === 'ACTIVE' && !('PendingUserAction' in last().body), 'GET shows ACTIVE without PendingUserAction');

    console.log('deactivate the ACTIVE recipient');
    const deactivated = await api.Recipients.deactivate(created.Id);
    check(deactivated.Status === 'DEACTIVATED', 'Status is DEACTIVATED');
    err = await expectRejection(api.Recipients.deactivate(created.Id), 'a second deactivation');
    check(last().status === 400 && err.Message === 'Invalid State', 'it answers 400 Invalid State');
}

async function main() {
    console.log(`Node SDK against ${BASE_URL} (client ${CLIENT_ID})`);
    console.log('create a natural OWNER and a natural PAYER');
    const owner = await api.Users.create(new api.models.UserNatural({
        FirstName: 'Alex', LastName: 'Smith', Email: 'alex.smith@example.com', Birthday: 652117514,
        Nationality: 'FR', CountryOfResidence: 'FR', Address: parisAddress(), UserCategory: 'OWNER',
        TermsAndConditionsAccepted: true, Tag: 'node sdk bank owner'
    }));
    const payer = await api.Users.create(new api.models.UserNatural({
        FirstName: 'Sam', LastName: 'Payer', Email: 'sam.payer@example.com', UserCategory: 'PAYER',
        TermsAndConditionsAccepted: false, Tag: 'node sdk bank payer'
    }));
    check(owner.Id.startsWith('user_m_') && payer.Id.startsWith('user_m_'), 'both users created');
    await bankAccounts(owner);
    await recipients(owner, payer);
    console.log(`node_bank: all checks passed (${exchanges.length} HTTP exchanges)`);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    console.error('node_bank: FAILED');
    process.exit(1);
});
