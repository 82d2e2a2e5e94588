'use strict';
// Drive the diesel-mangopay sandbox with the official Mangopay Node SDK
// (`mangopay4-nodejs-sdk`) through the user flows.
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

function parisAddress() {
    return {AddressLine1: '3 rue de la Cite', AddressLine2: 'Appartement 7', City: 'Paris',
        Region: 'Ile-de-France', PostalCode: '75004', Country: 'FR'};
}

function naturalOwner(overrides) {
    return new api.models.UserNatural(Object.assign({
        FirstName: 'Alex', LastName: 'Smith', Email: 'alex.smith@example.com',
        Birthday: 652117514, Nationality: 'FR', CountryOfResidence: 'FR', Address: parisAddress(),
        UserCategory: 'OWNER', TermsAndConditionsAccepted: true, Tag: 'node sdk owner'
    }, overrides || {}));
}

async function listAll(parameters) {
    const response = await api.Users.getAll({parameters: parameters, resolveWithFullResponse: true});
    return {
        users: response.body,
        items: parseInt(response.headers['x-number-of-items'], 10),
        pages: parseInt(response.headers['x-number-of-pages'], 10),
        link: response.headers['link']
    };
}

async function main() {
    console.log(`Node SDK ${require('mangopay4-nodejs-sdk/package.json').version} against ${BASE_URL} (client ${CLIENT_ID})`);

    console.log('list users before the flow');
    const initialTotal = (await listAll({Page: 1, Per_Page: 1})).items;
    check(last().status === 200, 'GET /users answered 200');
    console.log(`  the sandbox holds ${initialTotal} users`);
    const created = [];

    console.log('create a natural OWNER user');
    const owner = await api.Users.create(naturalOwner());
    check(last().method === 'POST' && last().status === 200, 'POST /users/natural answered 200');
    check(last().url.endsWith('/users/natural'), `the SDK called ${last().url}`);
    check(/^user_m_[0-9A-HJKMNP-TV-Z]{26}$/.test(owner.Id), `Id ${owner.Id} is a user_m_ ULID`);
    check(owner.PersonType === 'NATURAL', 'PersonType is NATURAL');
    check(owner.KYCLevel === 'LIGHT', 'KYCLevel is LIGHT');
    check(owner.UserStatus === 'ACTIVE', 'UserStatus is ACTIVE');
    check(owner.Birthday === 652117514, 'Birthday is kept as an integer');
    check(Number.isInteger(owner.CreationDate), 'CreationDate is an integer timestamp');
    check(owner.TermsAndConditionsAcceptedDate === owner.CreationDate, 'TermsAndConditionsAcceptedDate is the creation time');
    check(owner.Address.Region === 'Ile-de-France', 'Address.Region is kept');
    check(!('PendingUserAction' in last().body), 'no PendingUserAction key (non-SCA user)');
    created.push(owner.Id);

    console.log('create a natural PAYER user');
    const payer = await api.Users.create(new api.models.UserNatural({
        FirstName: 'Pat', LastName: 'Payer', Email: 'pat.payer@example.com', UserCategory: 'PAYER',
        TermsAndConditionsAccepted: false, Birthday: 652117514, IncomeRange: 2, Tag: 'node sdk payer'
    }));
    check(last().status === 200, 'POST /users/natural answered 200');
    check(payer.UserCategory === 'PAYER', 'UserCategory is PAYER');
    check(payer.Birthday === null, 'Birthday is returned null for a PAYER');
    check(payer.IncomeRange === null, 'IncomeRange is returned null for a PAYER');
    check(payer.TermsAndConditionsAcceptedDate === null, 'TermsAndConditionsAcceptedDate is null for a PAYER');
    check(payer.Address.City === null, 'an absent Address comes back with null sub-fields');
    created.push(payer.Id);

    console.log('create a legal OWNER user');
    const legal = await api.Users.create(new api.models.UserLegal({
        Name: 'Best Business', LegalPersonType: 'BUSINESS', Email: 'best.business@example.com',
        HeadquartersAddress: {AddressLine1: '34 rue des Entreprises', City: 'Paris', PostalCode: '75001', Country: 'FR'},
        LegalRepresentativeFirstName: 'Alex', LegalRepresentativeLastName: 'Smith',
        LegalRepresentativeEmail: 'alex.smith@example.com', LegalRepresentativeBirthday: 652117514,
        LegalRepresentativeNationality: 'FR', LegalRepresentativeCountryOfResidence: 'FR',
        LegalRepresentativeAddress: parisAddress(), CompanyNumber: '123456789',
        UserCategory: 'OWNER', TermsAndConditionsAccepted: true, Tag: 'node sdk legal'
    }));
    check(last().status === 200 && last().url.endsWith('/users/legal'), 'POST /users/legal answered 200');
    check(legal.PersonType === 'LEGAL', 'PersonType is LEGAL');
    check(legal.HeadquartersAddress.AddressLine2 === null, 'HeadquartersAddress has all six sub-keys');
    check(legal.CompanyNumber === '123456789', 'CompanyNumber is kept');
    created.push(legal.Id);

    console.log('update each user');
    owner.LastName = 'Smithson';
    const ownerUpdated = await api.Users.update(owner);
    check(last().method === 'PUT' && last().status === 200, 'PUT answered 200');
    check(last().url.endsWith('/users/natural/' + owner.Id), `the SDK called ${last().url}`);
    check(ownerUpdated.LastName === 'Smithson', 'LastName updated');
    check(ownerUpdated.FirstName === 'Alex', 'FirstName kept');
    check(ownerUpdated.CreationDate === owner.CreationDate, 'CreationDate unchanged');

    const payerUpdated = await api.Users.update(new api.models.UserNatural({Id: payer.Id, PersonType: 'NATURAL', Tag: 'payer updated'}));
    check(last().status === 200, 'a PUT with only Tag (other keys null) answered 200');
    check(payerUpdated.Tag === 'payer updated', 'Tag updated');
    check(payerUpdated.FirstName === 'Pat' && payerUpdated.Email === 'pat.payer@example.com', 'null keys left the other fields as they were');

    legal.Name = 'Better Business';
    const legalUpdated = await api.Users.update(legal);
    check(last().url.endsWith('/users/legal/' + legal.Id) && last().status === 200, 'PUT /users/legal/{Id} answered 200');
    check(legalUpdated.Name === 'Better Business', 'Name updated');
    check(legalUpdated.LegalRepresentativeLastName === 'Smith', 'LegalRepresentativeLastName kept');

    console.log('view each user, generic and typed');
    let seen = await api.Users.get(owner.Id);
    check(last().url.endsWith('/users/' + owner.Id), 'Users.get calls /users/{Id}');
    check(seen.LastName === 'Smithson', 'Users.get shows the update');
    seen = await api.Users.getNatural(payer.Id);
    check(last().url.endsWith('/users/natural/' + payer.Id), 'Users.getNatural calls /users/natural/{Id}');
    check(seen.Tag === 'payer updated', 'Users.getNatural shows the update');
    seen = await api.Users.get(legal.Id);
    check(seen.PersonType === 'LEGAL', 'Users.get returns the legal user');
    seen = await api.Users.getLegal(legal.Id);
    check(last().url.endsWith('/users/legal/' + legal.Id), 'Users.getLegal calls /users/legal/{Id}');
    check(seen.Name === 'Better Business', 'Users.getLegal shows the update');
    let err = await expectRejection(api.Users.getLegal(owner.Id), 'Users.getLegal of a natural user');
    check(last().status === 404 && err.Type === 'ressource_not_found', 'it answers 404 ressource_not_found');
    check(err.errors && err.errors.RessourceNotFound.includes(owner.Id), 'errors.RessourceNotFound names the id');

    console.log('use an idempotency key');
    const key = crypto.randomUUID();
    const keyed = await api.Users.create(naturalOwner({FirstName: 'Idem', Email: 'idem@example.com'}), {headers: {'Idempotency-Key': key}});
    check(last().status === 200, 'keyed POST /users/natural answered 200');
    created.push(keyed.Id);
    err = await expectRejection(api.Users.create(naturalOwner({FirstName: 'Again'}), {headers: {'Idempotency-Key': key}}), 'reusing the key');
    check(last().status === 409 && err.Type === 'idempotent_creation_conflict', 'reuse answers 409 idempotent_creation_conflict');
    const replay = await api.Idempotency.get(key);
    check(last().url.endsWith('/responses/' + key), 'Idempotency.get calls /responses/{key}');
    check(replay.StatusCode === '200', "the stored StatusCode is the string '200'");
    check(replay.Resource && replay.Resource.Id === keyed.Id, 'the stored Resource is the created user');
    check(/^application\/json/.test(replay.ContentType), 'the stored ContentType is JSON');
    err = await expectRejection(api.Idempotency.get(crypto.randomUUID()), 'an unknown key');
    check(last().status === 400 && err.Type === 'correlationid_not_found', 'an unknown key answers 400 correlationid_not_found');

    console.log('list users with paging');
    const total = initialTotal + created.length;
    const pages = Math.ceil(total / 2);
    const first = await listAll({Page: 1, Per_Page: 2});
    check(first.users.length === Math.min(2, total), `page 1 holds ${Math.min(2, total)} users`);
    check(first.items === total, `X-Number-Of-Items is ${total}`);
    check(first.pages === pages, `X-Number-Of-Pages is ${pages}`);
    check(/rel="next"/.test(first.link) && /rel="last"/.test(first.link), 'the Link header offers next and last');
    const newest = await listAll({Page: 1, Per_Page: 2, Sort: 'CreationDate:DESC'});
    check(newest.users[0].Id === keyed.Id, 'Sort=CreationDate:DESC starts with the newest user');
    const listed = new Set();
    for (let page = 1; page <= pages; page++) {
        (await listAll({Page: page, Per_Page: 2})).users.forEach((u) => listed.add(u.Id));
    }
    check(created.every((id) => listed.has(id)), 'every created user is listed');
    err = await expectRejection(listAll({Page: 1, Per_Page: 101}), 'Per_Page=101');
    // With resolveWithFullResponse the SDK rejects with the response; the error report is its body.
    check(last().status === 400 && err.body.Type === 'param_error', 'Per_Page above 100 answers 400 param_error');
    check('Per_Page' in err.body.errors, `errors names Per_Page: ${JSON.stringify(err.body.errors)}`);

    console.log('a bad API key gets a 401');
    // A second instance shares (and resets) the SDK's request headers, so it
    // authenticates with its own, wrong, key.
    const bad = new mangopay({clientId: CLIENT_ID, clientApiKey: 'not-the-right-key', baseUrl: BASE_URL, errorHandler: quiet});
    err = await expectRejection(bad.Users.get(owner.Id), 'a call with a wrong API key');
    check(last().status === 401 && err.Type === 'invalid_credentials', 'the token call answers 401 invalid_credentials');

    console.log('a validation error names the field');
    err = await expectRejection(api.Users.create(new api.models.UserNatural({
        FirstName: 'Bad', LastName: 'Country', Email: 'bad.country@example.com', UserCategory: 'OWNER',
        TermsAndConditionsAccepted: true, Birthday: 652117514, Nationality: 'XX', CountryOfResidence: 'FR'
    })), 'an unknown Nationality');
    check(last().status === 400 && err.Type === 'param_error', 'it answers 400 param_error');
    check(err.errors && 'Nationality' in err.errors, `errors names Nationality: ${JSON.stringify(err.errors)}`);
    err = await expectRejection(api.Users.create(naturalOwner({TermsAndConditionsAccepted: false})), 'an OWNER without accepted terms');
    check(err.Type === 'user_hasnt_accepted_terms_and_conditions', 'it answers user_hasnt_accepted_terms_and_conditions');

    const final = await listAll({Page: 1, Per_Page: 1});
    check(final.items === total, `failed calls created no user (${total} in all)`);
    console.log(`node_users: all checks passed (${exchanges.length} HTTP exchanges)`);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    console.error('node_users: FAILED');
    process.exit(1);
});
