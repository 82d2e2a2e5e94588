'use strict';
// Drive the diesel-mangopay sandbox with the official Mangopay Node SDK
// (`mangopay4-nodejs-sdk`) through the verification flows: a KYC document of a natural
// OWNER from its creation to its validation (a real PNG page generated here, the review
// ended by the sandbox's control request, plain HTTP as it is not Mangopay's API) and the
// user's KYCLevel becoming REGULAR; the file checks; and a UBO declaration of a legal
// BUSINESS user, found incomplete, completed and validated.
//
// Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
// SANDBOX_API_KEY; NODE_PATH must reach the installed SDK. Prints each step;
// exits non-zero on the first mismatch.

const crypto = require('crypto');
const zlib = require('zlib');
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

// A control request of the sandbox: no authentication, JSON in and out.
async function control(path, body) {
    const response = await fetch(BASE_URL + path, {
        method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)
    });
    return {status: response.status, body: await response.json()};
}

// A real PNG of random RGB pixels: noise does not compress, so its size is about
// width * height * 3 bytes.
function png(width, height) {
    const crcTable = Array.from({length: 256}, (_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        }
        return c >>> 0;
    });
    const crc32 = (bytes) => {
        let c = 0xffffffff;
        for (const b of bytes) {
            c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
        }
        return (c ^ 0xffffffff) >>> 0;
    };
    const chunk = (kind, data) => {
        const body = Buffer.concat([Buffer.from(kind, 'ascii'), data]);
        const length = Buffer.alloc(4);
        length.writeUInt32BE(data.length);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(crc32(body));
        return Buffer.concat([length, body, crc]);
    };
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 2, 0, 0, 0], 8);
    const rows = [];
    for (let y = 0; y < height; y++) {
        rows.push(Buffer.from([0]), crypto.randomBytes(width * 3));
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk('IHDR', header),
        chunk('IDAT', zlib.deflateSync(Buffer.concat(rows), {level: 9})),
        chunk('IEND', Buffer.alloc(0)),
    ]);
}

async function identityDocument(owner) {
    console.log('create a KYC document');
    const document = await api.Users.createKycDocument(owner.Id, {Type: 'IDENTITY_PROOF', Tag: 'node sdk identity'});
    check(last().method === 'POST' && last().status === 200, 'POST answered 200');
    check(last().url.endsWith(`/users/${owner.Id}/KYC/documents/`), `the SDK called ${last().url}`);
    check(document.Id.startsWith('kyc_'), `Id ${document.Id} has the kyc_ prefix`);
    check(document.Status === 'CREATED' && document.UserId === owner.Id, 'a CREATED document of the user');
    check(Array.isArray(document.Flags) && document.Flags.length === 0 && document.ProcessedDate === null,
        'no flags, not processed');
    check(document.RefusedReasonType === null && document.RefusedReasonMessage === null, 'not refused');

    console.log('add a page: a real PNG above the identity proof\'s 32 KB minimum');
    const image = png(128, 128);
    check(image.length > 32 * 1024, `the PNG is ${image.length} bytes`);
    await api.Users.createKycPage(owner.Id, document.Id, {File: image.toString('base64')});
    check(last().method === 'POST' && last().status === 204, 'POST .../pages answered 204');
    check(last().url.endsWith(`/users/${owner.Id}/KYC/documents/${document.Id}/pages`), `the SDK called ${last().url}`);

    console.log('submit it');
    const submitted = await api.Users.updateKycDocument(owner.Id, {Id: document.Id, Status: 'VALIDATION_ASKED'});
    check(last().method === 'PUT' && submitted.Status === 'VALIDATION_ASKED', 'PUT answered VALIDATION_ASKED');
    let err = await expectRejection(api.Users.updateKycDocument(owner.Id, {Id: document.Id, Status: 'VALIDATION_ASKED'}),
        'a second submission');
    check(last().status === 400 && err.Type === 'invalid_action', 'it answers 400 invalid_action');
    err = await expectRejection(api.Users.createKycPage(owner.Id, document.Id, {File: image.toString('base64')}),
        'a page after the submission');
    check(last().status === 400 && err.Type === 'invalid_action', 'it answers 400 invalid_action');

    console.log('view it and list the user\'s documents');
    const viewed = await api.Users.getKycDocument(owner.Id, document.Id);
    check(viewed.Id === document.Id && viewed.Status === 'VALIDATION_ASKED', 'GET /users/{Id}/KYC/documents/{Id}');
    const alt = await api.KycDocuments.get(document.Id);
    check(alt.Id === document.Id && alt.Status === 'VALIDATION_ASKED', 'GET /KYC/documents/{Id}');
    const listed = await api.Users.getKycDocuments(owner.Id);
    check(listed.length === 1 && listed[0].Id === document.Id, 'the user\'s list holds the document');
    const all = await api.KycDocuments.getAll({parameters: {Status: 'VALIDATION_ASKED', Sort: 'CreationDate:DESC', Per_Page: 100}});
    check(all.some((d) => d.Id === document.Id), 'the client-wide list filters on Status');

    console.log('the control request validates it');
    const answer = await control(`/_sandbox/kyc/documents/${document.Id}/outcome`, {Status: 'VALIDATED'});
    check(answer.status === 200 && answer.body.Status === 'VALIDATED', 'the control request answers the VALIDATED document');
    const validated = await api.Users.getKycDocument(owner.Id, document.Id);
    check(validated.Status === 'VALIDATED' && Number.isInteger(validated.ProcessedDate), 'GET shows VALIDATED with its ProcessedDate');
    const user = await api.Users.get(owner.Id);
    check(user.KYCLevel === 'REGULAR', 'the user\'s KYCLevel is REGULAR');
    check(user.ProofOfIdentity === document.Id, 'ProofOfIdentity names the document');
    return image;
}

async function fileChecks(owner, image) {
    console.log('the file checks');
    const document = await api.Users.createKycDocument(owner.Id, {Type: 'IDENTITY_PROOF'});
    const text = Buffer.from('This is a text file named scan.png. '.repeat(1500), 'ascii');
    let err = await expectRejection(api.Users.createKycPage(owner.Id, document.Id, {File: text.toString('base64')}),
        'a text file');
    check(last().status === 415 && err.errors && err.errors.File !== undefined, 'it answers 415 on File');
    const small = png(16, 16);
    err = await expectRejection(api.Users.createKycPage(owner.Id, document.Id, {File: small.toString('base64')}),
        `a ${small.length}-byte PNG`);
    check(last().status === 400 && err.errors.File === 'The file is too small to be readable',
        'it is too small to be readable');
    err = await expectRejection(api.Users.updateKycDocument(owner.Id, {Id: document.Id, Status: 'VALIDATION_ASKED'}),
        'a submission without pages');
    check(last().status === 400 && err.Type === 'invalid_action', 'it answers 400 invalid_action');
    for (let n = 0; n < 5; n++) {
        await api.Users.createKycPage(owner.Id, document.Id, {File: image.toString('base64')});
    }
    err = await expectRejection(api.Users.createKycPage(owner.Id, document.Id, {File: image.toString('base64')}),
        'a sixth page');
    check(last().status === 400 && err.Type === 'max_page_number', 'it answers 400 max_page_number');
}

async function uboDeclaration() {
    console.log('a UBO declaration of a legal BUSINESS owner');
    const legal = await api.Users.create(new api.models.UserLegal({
        Name: 'Best Business', Email: 'best.business@example.com', LegalPersonType: 'BUSINESS',
        UserCategory: 'OWNER', TermsAndConditionsAccepted: true, HeadquartersAddress: parisAddress(),
        CompanyNumber: '123456789', LegalRepresentativeFirstName: 'Alex', LegalRepresentativeLastName: 'Smith',
        LegalRepresentativeEmail: 'alex.smith@example.com', LegalRepresentativeBirthday: 652117514,
        LegalRepresentativeNationality: 'FR', LegalRepresentativeCountryOfResidence: 'FR',
        LegalRepresentativeAddress: parisAddress(), Tag: 'node sdk kyc business'
    }));
    const declaration = await api.UboDeclarations.create(legal.Id);
    check(last().status === 200 && declaration.Status === 'CREATED' && declaration.UserId === legal.Id,
        'a CREATED declaration (POST without a body)');
    const err = await expectRejection(api.UboDeclarations.create(legal.Id), 'a second declaration');
    check(err.Type === 'invalid_action', 'refused while one is in progress');

    const ubo = await api.UboDeclarations.createUbo(legal.Id, declaration.Id, {
        FirstName: 'Michaela', LastName: 'Effertz', Birthday: 652117514, Nationality: 'FR',
        Address: parisAddress(), Birthplace: {City: 'Paris', Country: 'FR'}
    });
    check(ubo.Id.startsWith('ubo_m_') && ubo.IsActive === true, `UBO ${ubo.Id} created, active`);
    let submitted = await api.UboDeclarations.update(legal.Id, {Id: declaration.Id, Status: 'VALIDATION_ASKED'});
    check(submitted.Status === 'VALIDATION_ASKED' && submitted.Ubos.length === 1, 'submitted with its UBO');

    let answer = await control(`/_sandbox/kyc/ubodeclarations/${declaration.Id}/outcome`,
        {Status: 'INCOMPLETE', Reason: 'MISSING_UBO', Message: 'A shareholder is missing'});
    check(answer.status === 200 && answer.body.Status === 'INCOMPLETE', 'the control request finds it incomplete');
    const incomplete = await api.UboDeclarations.getById(declaration.Id);
    check(incomplete.Reason === 'MISSING_UBO' && incomplete.Message === 'A shareholder is missing',
        'GET shows the Reason and Message');
    await api.UboDeclarations.createUbo(legal.Id, declaration.Id, {
        FirstName: 'Jess', LastName: 'Wiza', Birthday: 652117514, Nationality: 'FR',
        Address: parisAddress(), Birthplace: {City: 'Lyon', Country: 'FR'}
    });
    const updated = await api.UboDeclarations.updateUbo(legal.Id, declaration.Id, {Id: ubo.Id, FirstName: 'Michaéla'});
    check(updated.FirstName === 'Michaéla' && updated.LastName === 'Effertz', 'the UBO is updated');
    submitted = await api.UboDeclarations.update(legal.Id, {Id: declaration.Id, Status: 'VALIDATION_ASKED'});
    check(submitted.Status === 'VALIDATION_ASKED' && submitted.Ubos.length === 2, 'submitted again with two UBOs');
    answer = await control(`/_sandbox/kyc/ubodeclarations/${declaration.Id}/outcome`, {Status: 'VALIDATED'});
    check(answer.status === 200, 'the control request validates it');
    const declarations = await api.UboDeclarations.getAll(legal.Id);
    check(declarations.length === 1 && declarations[0].Status === 'VALIDATED', 'the user\'s list shows it VALIDATED');
    const viewedUbo = await api.UboDeclarations.getUbo(legal.Id, declaration.Id, ubo.Id);
    check(viewedUbo.Birthplace.City === 'Paris', 'GET .../ubos/{Id} answers the UBO');
}

async function main() {
    console.log(`Node SDK against ${BASE_URL} (client ${CLIENT_ID})`);
    console.log('create a natural OWNER');
    const owner = await api.Users.create(new api.models.UserNatural({
        FirstName: 'Alex', LastName: 'Smith', Email: 'alex.smith@example.com', Birthday: 652117514,
        Nationality: 'FR', CountryOfResidence: 'FR', Address: parisAddress(), UserCategory: 'OWNER',
        TermsAndConditionsAccepted: true, Tag: 'node sdk kyc owner'
    }));
    check(owner.Id.startsWith('user_m_') && owner.KYCLevel === 'LIGHT', 'a LIGHT user created');
    const image = await identityDocument(owner);
    await fileChecks(owner, image);
    await uboDeclaration();
    console.log(`node_kyc: all checks passed (${exchanges.length} HTTP exchanges)`);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    console.error('node_kyc: FAILED');
    process.exit(1);
});
