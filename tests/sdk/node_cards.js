'use strict';
// Drive the diesel-mangopay sandbox with the official Mangopay Node SDK
// (`mangopay4-nodejs-sdk`) through money in: a card registration, the card's
// tokenization (a form POST to the registration's CardRegistrationURL through
// the SDK's own HTTP method, as its test helpers do), the card, a direct card
// pay-in and a partial refund of it.
//
// Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
// SANDBOX_API_KEY; NODE_PATH must reach the installed SDK. Prints each step;
// exits non-zero on the first mismatch.

const mangopay = require('mangopay4-nodejs-sdk');

const BASE_URL = process.env.SANDBOX_URL.replace(/\/+$/, '');
const CLIENT_ID = process.env.SANDBOX_CLIENT_ID;
const API_KEY = process.env.SANDBOX_API_KEY;

// The test card whose pay-ins succeed without 3-D Secure.
const CARD_NUMBER = '4970107111111119';

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

// The tokenization POST as the SDK's test helpers send it: the SDK's manual HTTP method, the
// fields as a form (axios encodes them), form headers only, so no Authorization. Resolves
// with the answer's text.
async function tokenize(registration, number, expiry, cvx) {
    const data = await api.method('post', null, {
        url: registration.CardRegistrationURL,
        data: {
            data: registration.PreregistrationData,
            accessKeyRef: registration.AccessKey,
            cardNumber: number,
            cardExpirationDate: expiry,
            cardCvx: cvx
        },
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}
    });
    return Buffer.from(data).toString();
}

function parisAddress() {
    return {AddressLine1: '3 rue de la Cite', AddressLine2: 'Appartement 7', City: 'Paris',
        Region: 'Ile-de-France', PostalCode: '75004', Country: 'FR'};
}

function eur(amount) {
    return {Currency: 'EUR', Amount: amount};
}

async function balance(walletId) {
    return (await api.Wallets.get(walletId)).Balance.Amount;
}

async function main() {
    console.log(`Node SDK against ${BASE_URL} (client ${CLIENT_ID})`);

    console.log('a natural user and a EUR wallet');
    const alice = await api.Users.create(new api.models.UserNatural({
        FirstName: 'Alice', LastName: 'Smith', Email: 'alice@example.com', Birthday: 652117514,
        Nationality: 'FR', CountryOfResidence: 'FR', Address: parisAddress(), UserCategory: 'OWNER',
        TermsAndConditionsAccepted: true, Tag: 'node sdk cards'
    }));
    const wallet = await api.Wallets.create({Owners: [alice.Id], Currency: 'EUR', Description: "Alice's EUR wallet", Tag: 'node cards'});
    check(await balance(wallet.Id) === 0, 'the wallet starts empty');

    console.log('a card registration');
    // The SDK copies the answer into the object it was given, with a nested `data` copy.
    const registration = {UserId: alice.Id, Currency: 'EUR', CardType: 'CB_VISA_MASTERCARD'};
    const created = await api.CardRegistrations.create(registration);
    check(last().method === 'POST' && last().status === 200, 'POST /cardregistrations answered 200');
    check(created.Id === registration.Id && registration.data.Id === created.Id, 'the SDK filled the object it sent');
    check(registration.Id.startsWith('cardreg_m_'), `Id ${registration.Id} has the cardreg_m_ prefix`);
    check(registration.Status === 'CREATED', 'Status CREATED');
    check(registration.AccessKey && registration.PreregistrationData, 'AccessKey and PreregistrationData');
    check(registration.CardRegistrationURL.startsWith(BASE_URL + '/'), `CardRegistrationURL points at the sandbox: ${registration.CardRegistrationURL}`);
    const err = await expectRejection(api.CardRegistrations.create({UserId: 'user_m_nobody', Currency: 'EUR'}), 'an unknown user');
    check(last().status === 404 && err.Type === 'ressource_not_found', 'it answers 404 ressource_not_found');

    console.log('the card is tokenized by a form POST to CardRegistrationURL');
    const now = new Date();
    const expiry = String(now.getUTCMonth() + 1).padStart(2, '0') + String((now.getUTCFullYear() + 3) % 100).padStart(2, '0');
    const refused = await tokenize(registration, CARD_NUMBER, expiry, '12');
    check(refused === 'errorCode=105204', 'a 2-digit CVC: errorCode=105204');
    const data = await tokenize(registration, CARD_NUMBER, expiry, '123');
    check(typeof data === 'string' && data.startsWith('data='), 'the tokenizer answered data=<token>');

    console.log('the registration is updated with RegistrationData');
    // As the SDK's tests do it: the whole object sent back, its nested `data` copy included.
    registration.RegistrationData = data;
    registration.CardHolderName = 'Alice Smith';
    const updated = await api.CardRegistrations.update(registration);
    check(last().method === 'PUT' && last().status === 200, 'PUT /cardregistrations/{Id} answered 200');
    check(last().url.includes(`/cardregistrations/${registration.Id}`), 'the SDK called PUT /cardregistrations/{Id}');
    check(updated.Status === 'VALIDATED', 'Status VALIDATED');
    check(updated.ResultCode === '000000', 'ResultCode 000000');
    check(updated.RegistrationData === data, 'RegistrationData echoed');
    check(typeof updated.CardId === 'string' && updated.CardId.startsWith('card_m_'), `CardId ${updated.CardId} set`);
    const viewedRegistration = await api.CardRegistrations.get(registration.Id);
    check(viewedRegistration.Status === 'VALIDATED' && viewedRegistration.CardId === updated.CardId, 'GET /cardregistrations/{Id} reads it back');

    console.log('the card');
    const card = await api.Cards.get(updated.CardId);
    check(last().url.includes(`/cards/${updated.CardId}`), 'the SDK called GET /cards/{Id}');
    check(card.Alias === '497010XXXXXX1119', `Alias ${card.Alias} masks the number`);
    check(card.ExpirationDate === expiry, `ExpirationDate ${card.ExpirationDate}`);
    check(card.CardProvider === 'VISA' && card.CardType === 'CB_VISA_MASTERCARD', 'CardProvider VISA, CardType CB_VISA_MASTERCARD');
    check(card.Validity === 'UNKNOWN', 'a new card\'s Validity is UNKNOWN');
    check(card.Active === true && card.Currency === 'EUR', 'active, in EUR');
    check(card.CardHolderName === 'Alice Smith', 'CardHolderName kept on the card');
    check(card.Fingerprint && !JSON.stringify(last().body).includes(CARD_NUMBER), 'a Fingerprint, and never the number');
    const cards = await api.Users.getCards(alice.Id);
    check(cards.length === 1 && cards[0].Id === card.Id, 'GET /users/{Id}/cards lists it');

    console.log('a direct card pay-in');
    const payin = await api.PayIns.create({
        PaymentType: 'CARD', ExecutionType: 'DIRECT', AuthorId: alice.Id, CreditedWalletId: wallet.Id,
        DebitedFunds: eur(10000), Fees: eur(100), CardId: card.Id, SecureMode: 'DEFAULT',
        SecureModeReturnURL: 'https://example.com/return', StatementDescriptor: 'NODE', Tag: 'node payin',
        BrowserInfo: {
            AcceptHeader: 'text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8',
            JavaEnabled: true, JavascriptEnabled: true, Language: 'fr-FR', ColorDepth: 24,
            ScreenHeight: 1080, ScreenWidth: 1920, TimeZoneOffset: 60, UserAgent: 'Mozilla/5.0 (X11; Linux x86_64)'
        },
        IpAddress: '2001:0620:0000:0000:0211:24FF:FE80:C12C'
    });
    check(last().method === 'POST' && last().status === 200, 'POST /payins/card/direct/ answered 200');
    check(last().url.endsWith('/payins/card/direct/'), `the SDK called ${last().url}`);
    check(payin.Id.startsWith('payin_m_'), `Id ${payin.Id} has the payin_m_ prefix`);
    check(payin.Status === 'SUCCEEDED' && payin.ResultCode === '000000', 'the pay-in SUCCEEDED with 000000');
    check(payin.Type === 'PAYIN' && payin.Nature === 'REGULAR', 'Type PAYIN, Nature REGULAR');
    check(payin.SecurityInfo && payin.SecurityInfo.AVSResult === 'NO_CHECK', 'SecurityInfo.AVSResult NO_CHECK');
    check(payin.CardInfo && payin.CardInfo.BIN === '497010', 'CardInfo with the BIN');
    check(payin.CreditedFunds.Amount === 9900, 'CreditedFunds = DebitedFunds - Fees');
    check(Number.isInteger(payin.ExecutionDate), 'ExecutionDate is an integer timestamp');
    const viewedPayin = await api.PayIns.get(payin.Id);
    check(viewedPayin.Status === 'SUCCEEDED' && viewedPayin.PaymentType === 'CARD' && viewedPayin.ExecutionType === 'DIRECT',
        'GET /payins/{Id} reads it back');
    check(await balance(wallet.Id) === 9900, 'the wallet holds 9900');
    check((await api.Cards.get(card.Id)).Validity === 'VALID', 'the card became VALID');

    console.log('a partial refund');
    const refund = await api.PayIns.createRefund(payin.Id, {AuthorId: alice.Id, DebitedFunds: eur(3000), Fees: eur(-30), Tag: 'node refund'});
    check(last().method === 'POST' && last().status === 200, 'POST /payins/{Id}/refunds answered 200');
    check(last().url.includes(`/payins/${payin.Id}/refunds`), `the SDK called ${last().url}`);
    check(refund.Id.startsWith('refund_m_'), `Id ${refund.Id} has the refund_m_ prefix`);
    check(refund.Status === 'SUCCEEDED', 'the refund SUCCEEDED');
    check(refund.Type === 'PAYOUT' && refund.Nature === 'REFUND', 'Type PAYOUT, Nature REFUND');
    check(refund.DebitedFunds.Amount === 3000 && refund.Fees.Amount === -30, 'DebitedFunds 3000, Fees -30');
    check(refund.InitialTransactionId === payin.Id && refund.InitialTransactionType === 'PAYIN', 'InitialTransactionId is the pay-in');
    const viewedRefund = await api.Refunds.get(refund.Id);
    check(last().url.includes(`/refunds/${refund.Id}`), 'the SDK called GET /refunds/{Id}');
    check(viewedRefund.Status === 'SUCCEEDED' && viewedRefund.Tag === 'node refund', 'GET /refunds/{Id} reads it back');
    check(await balance(wallet.Id) === 9900 - 2970, 'the wallet gave back 2970 (the fees wallet the other 30)');
    const refunds = await api.PayIns.getRefunds(payin.Id);
    check(refunds.length === 1 && refunds[0].Id === refund.Id, 'GET /payins/{Id}/refunds lists it');
    const tooMuch = await expectRejection(api.PayIns.createRefund(payin.Id, {AuthorId: alice.Id, DebitedFunds: eur(7001), Fees: eur(0)}), 'refunding more than is left');
    check(last().status === 400 && tooMuch.Type === 'param_error' && tooMuch.errors.DebitedFunds, 'it answers 400 param_error on DebitedFunds');

    console.log('the card is deactivated');
    const deactivated = await api.Cards.update({Id: card.Id, Active: false});
    check(last().method === 'PUT' && last().status === 200, 'PUT /cards/{Id} answered 200');
    check(deactivated.Active === false, 'the card is no longer active');

    console.log(`node_cards: all checks passed (${exchanges.length} HTTP exchanges)`);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    console.error('node_cards: FAILED');
    process.exit(1);
});
