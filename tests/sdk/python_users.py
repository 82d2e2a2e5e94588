"""Drive the diesel-mangopay sandbox with the official Mangopay Python SDK
(`mangopay4-python-sdk`, module `mangopay`) through the user flows.

Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
SANDBOX_API_KEY. Prints each step; exits non-zero on the first mismatch.
"""

import datetime
import logging
import math
import os
import sys
import traceback
import uuid

import mangopay

BASE_URL = os.environ["SANDBOX_URL"].rstrip("/")
CLIENT_ID = os.environ["SANDBOX_CLIENT_ID"]
API_KEY = os.environ["SANDBOX_API_KEY"]
API_URL = BASE_URL + "/v2.01/"

# The SDK logs every non-2xx answer at ERROR level; the flow provokes some on purpose.
logging.getLogger("mangopay").setLevel(logging.CRITICAL)

# Must be set before the first resource call: the default handler is memoized.
mangopay.client_id = CLIENT_ID
mangopay.apikey = API_KEY
mangopay.api_url = mangopay.api_sandbox_url = API_URL
mangopay.sandbox = False

from mangopay.api import APIRequest  # noqa: E402
from mangopay.auth import StaticStorageStrategy  # noqa: E402
from mangopay.exceptions import APIError  # noqa: E402
from mangopay.resources import IdempotencyResponse, LegalUser, NaturalUser, User  # noqa: E402
from mangopay.signals import request_finished  # noqa: E402
from mangopay.utils import Address  # noqa: E402

# Every HTTP exchange, to check statuses the SDK would otherwise hide
# (it treats 404 as success).
EXCHANGES = []


def _record(sender=None, **kwargs):
    result = kwargs["result"]
    EXCHANGES.append((kwargs["method"], kwargs["url"], result.status_code, result))


request_finished.connect(_record, weak=False)


class Mismatch(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Mismatch(what)
    print("  ok: " + what)


def last_exchange():
    check(EXCHANGES, "an HTTP exchange was recorded")
    return EXCHANGES[-1][:3]


def last_json():
    """The JSON body of the last answer, as the sandbox sent it."""
    return EXCHANGES[-1][3].json()


def expect_api_error(call, status):
    try:
        call()
    except APIError as err:
        check(err.code == status, "APIError with HTTP %s (got %s)" % (status, err.code))
        return err
    raise Mismatch("expected an APIError with HTTP %s, the call succeeded" % status)


def paris_address():
    return Address(address_line_1="3 rue de la Cite", address_line_2="Appartement 7",
                   city="Paris", region="Ile-de-France", postal_code="75004", country="FR")


def natural_owner(**overrides):
    fields = dict(first_name="Alex", last_name="Smith", email="alex.smith@example.com",
                  birthday=datetime.date(1990, 9, 1), nationality="FR", country_of_residence="FR",
                  address=paris_address(), user_category="OWNER",
                  terms_and_conditions_accepted=True, tag="python sdk owner")
    fields.update(overrides)
    return NaturalUser(**fields)


def main():
    print("Python SDK %s against %s (client %s)" % (mangopay.package_version, API_URL, CLIENT_ID))

    print("list users before the flow")
    before = User.all(page=1, per_page=1)
    check(EXCHANGES[-1][2] == 200, "GET /users answered 200")
    initial_total = int(before.total_items)
    print("  the sandbox holds %d users" % initial_total)
    created = []

    print("create a natural OWNER user")
    owner = natural_owner()
    owner.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /users/natural answered 200")
    check(url.endswith("/users/natural"), "the SDK called %s" % url)
    check(owner.id.startswith("user_m_"), "Id %s has the user_m_ prefix" % owner.id)
    check(owner.person_type == "NATURAL", "PersonType is NATURAL")
    check(owner.kyc_level == "LIGHT", "KYCLevel is LIGHT")
    check(owner.user_status == "ACTIVE", "UserStatus is ACTIVE")
    check(owner.birthday == datetime.date(1990, 9, 1), "Birthday round-trips as an integer timestamp")
    body = last_json()
    check(isinstance(body["CreationDate"], int), "CreationDate is an integer timestamp")
    check(isinstance(body["TermsAndConditionsAcceptedDate"], int), "TermsAndConditionsAcceptedDate is an integer")
    check("PendingUserAction" not in body, "no PendingUserAction key (non-SCA user)")
    check(owner.terms_and_conditions_accepted is True, "TermsAndConditionsAccepted is true")
    check(isinstance(owner.terms_and_conditions_accepted_date, datetime.datetime),
          "TermsAndConditionsAcceptedDate is set for an OWNER")
    check(owner.address.city == "Paris", "Address.City is Paris")
    created.append(owner.id)

    print("create a natural PAYER user")
    payer = NaturalUser(first_name="Pat", last_name="Payer", email="pat.payer@example.com",
                        user_category="PAYER", terms_and_conditions_accepted=False,
                        nationality="FR", income_range=2, tag="python sdk payer")
    payer.save()
    check(last_exchange()[2] == 200, "POST /users/natural answered 200")
    check(payer.user_category == "PAYER", "UserCategory is PAYER")
    check(payer.nationality is None, "Nationality is returned null for a PAYER")
    check(payer.income_range is None, "IncomeRange is returned null for a PAYER")
    check(payer.terms_and_conditions_accepted is False, "TermsAndConditionsAccepted is false")
    created.append(payer.id)

    print("create a legal OWNER user")
    legal = LegalUser(name="Best Business", legal_person_type="BUSINESS", email="best.business@example.com",
                      headquarters_address=Address(address_line_1="34 rue des Entreprises", city="Paris",
                                                   postal_code="75001", country="FR"),
                      legal_representative_first_name="Alex", legal_representative_last_name="Smith",
                      legal_representative_email="alex.smith@example.com",
                      legal_representative_birthday=datetime.date(1980, 9, 1),
                      legal_representative_nationality="FR", legal_representative_country_of_residence="FR",
                      legal_representative_address=paris_address(), company_number="123456789",
                      user_category="OWNER", terms_and_conditions_accepted=True, tag="python sdk legal")
    legal.save()
    check(last_exchange()[2] == 200, "POST /users/legal answered 200")
    check(last_exchange()[1].endswith("/users/legal"), "the SDK called /users/legal")
    check(legal.person_type == "LEGAL", "PersonType is LEGAL")
    check(legal.company_number == "123456789", "CompanyNumber is kept")
    check(legal.headquarters_address.postal_code == "75001", "HeadquartersAddress.PostalCode is kept")
    created.append(legal.id)

    print("update each user")
    owner.first_name = "Alexandra"
    owner.income_range = "3"
    owner.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT /users/natural/{Id} answered 200")
    check(url.endswith("/users/natural/" + owner.id), "the SDK called %s" % url)
    check(owner.first_name == "Alexandra", "FirstName updated")
    check(owner.last_name == "Smith", "LastName kept")
    check(str(owner.income_range) == "3", "IncomeRange updated from a numeric string")

    payer.tag = "payer updated"
    payer.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT /users/natural/{Id} answered 200 for the payer")
    check(payer.tag == "payer updated", "Tag updated")
    check(payer.email == "pat.payer@example.com", "Email kept")

    legal.name = "Better Business"
    legal.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT /users/legal/{Id} answered 200")
    check(url.endswith("/users/legal/" + legal.id), "the SDK called %s" % url)
    check(legal.name == "Better Business", "Name updated")
    check(legal.legal_representative_first_name == "Alex", "LegalRepresentativeFirstName kept")

    print("view each user, generic and typed")
    seen = User.get(owner.id)
    check(isinstance(seen, NaturalUser), "User.get casts the owner to NaturalUser")
    check(seen.first_name == "Alexandra", "User.get shows the updated FirstName")
    seen = NaturalUser.get(payer.id)
    check(last_exchange()[1].endswith("/users/natural/" + payer.id), "NaturalUser.get calls /users/natural/{Id}")
    check(seen.tag == "payer updated", "NaturalUser.get shows the updated Tag")
    seen = User.get(legal.id)
    check(isinstance(seen, LegalUser), "User.get casts the legal user to LegalUser")
    seen = LegalUser.get(legal.id)
    check(last_exchange()[1].endswith("/users/legal/" + legal.id), "LegalUser.get calls /users/legal/{Id}")
    check(seen.name == "Better Business", "LegalUser.get shows the updated Name")
    try:
        NaturalUser.get(legal.id)
        raise Mismatch("NaturalUser.get of a legal user id should not find it")
    except NaturalUser.DoesNotExist:
        check(last_exchange()[2] == 404, "NaturalUser.get of a legal user id answers 404 ressource_not_found")

    print("use an idempotency key")
    key = str(uuid.uuid4())
    keyed = natural_owner(first_name="Idem", email="idem@example.com", tag="python sdk idempotent")
    keyed.save(idempotency_key=key)
    check(last_exchange()[2] == 200, "keyed POST /users/natural answered 200")
    created.append(keyed.id)
    expect_api_error(lambda: natural_owner(first_name="Again").save(idempotency_key=key), 409)
    replay = IdempotencyResponse.get(key)
    check(last_exchange()[1].endswith("/responses//" + key) or last_exchange()[1].endswith("/responses/" + key),
          "IdempotencyResponse.get called %s" % last_exchange()[1])
    check(replay.status == "200", "the stored StatusCode is the string '200'")
    check(replay.resource["Id"] == keyed.id, "the stored Resource is the created user")
    check(replay.content_type.startswith("application/json"), "the stored ContentType is JSON")
    err = expect_api_error(lambda: IdempotencyResponse.get(str(uuid.uuid4())), 400)
    check(err.content["Type"] == "correlationid_not_found", "an unknown key is correlationid_not_found")

    print("list users with paging")
    total = initial_total + len(created)
    first = User.all(page=1, per_page=2)
    check(len(first) == min(2, total), "page 1 holds %d users" % min(2, total))
    check(int(first.total_items) == total, "X-Number-Of-Items is %d" % total)
    check(int(first.total_pages) == math.ceil(total / 2), "X-Number-Of-Pages is %d" % math.ceil(total / 2))
    newest = User.all(page=1, per_page=2, sort="CreationDate:DESC")
    check(newest[0].id == keyed.id, "Sort=CreationDate:DESC starts with the newest user")
    last_page = User.all(page=math.ceil(total / 2), per_page=2)
    check(len(last_page) == total - 2 * (math.ceil(total / 2) - 1), "the last page holds the remainder")
    listed = set()
    for page in range(1, math.ceil(total / 2) + 1):
        listed.update(user.id for user in User.all(page=page, per_page=2))
    check(set(created) <= listed, "every created user is listed")

    print("a bad API key gets a 401")
    bad = APIRequest(client_id=CLIENT_ID, apikey="not-the-right-key", api_url=API_URL,
                     api_sandbox_url=API_URL, sandbox=False, storage_strategy=StaticStorageStrategy())
    err = expect_api_error(lambda: User.get(owner.id, handler=bad), 401)
    check(err.content["Type"] == "invalid_credentials", "the 401 is invalid_credentials")

    print("a validation error names the field")
    err = expect_api_error(lambda: NaturalUser(first_name="Bad", last_name="Mail", email="not-an-email",
                                               user_category="PAYER").save(), 400)
    check(err.content["Type"] == "param_error", "the 400 is a param_error")
    check("Email" in err.content["errors"], "errors names Email: %s" % err.content["errors"])
    err = expect_api_error(lambda: natural_owner(terms_and_conditions_accepted=False).save(), 400)
    check(err.content["Type"] == "user_hasnt_accepted_terms_and_conditions",
          "an OWNER without accepted terms is refused")

    final = User.all(page=1, per_page=1)
    check(int(final.total_items) == total, "failed calls created no user (%d in all)" % total)
    print("python_users: all checks passed (%d HTTP exchanges)" % len(EXCHANGES))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # every failure, including SDK errors, fails the run
        traceback.print_exc()
        print("python_users: FAILED", file=sys.stderr)
        sys.exit(1)
