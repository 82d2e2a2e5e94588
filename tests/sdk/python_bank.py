"""Drive the diesel-mangopay sandbox with the official Mangopay Python SDK
(`mangopay4-python-sdk`, module `mangopay`) through the bank account and recipient
flows: legacy bank accounts of every type, their view, list and deactivation, and
recipients from their schema to their deactivation, one of them made ACTIVE by the
sandbox's control request (plain HTTP, as it is not Mangopay's API).

Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
SANDBOX_API_KEY. Prints each step; exits non-zero on the first mismatch.
"""

import datetime
import logging
import os
import sys
import traceback
import uuid

import mangopay
import requests

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

from mangopay.exceptions import APIError  # noqa: E402
from mangopay.resources import (  # noqa: E402
    BankAccount, IdempotencyResponse, NaturalUser, PayoutMethod, Recipient, RecipientSchema,
)
from mangopay.signals import request_finished  # noqa: E402
from mangopay.utils import Address, BusinessRecipient, IndividualRecipient  # noqa: E402

# Every HTTP exchange, to check statuses and bodies the SDK would otherwise hide.
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
                   city="Paris", region="Ile de France", postal_code="75004", country="FR")


def london_address():
    return Address(address_line_1="10 Kingsway", city="London", postal_code="WC2B 6LH",
                   country="GB")


def control(path, body):
    """A control request of the sandbox: no authentication, JSON in and out."""
    return requests.post(BASE_URL + path, json=body, timeout=10)


def create_owner(tag):
    owner = NaturalUser(first_name="Alex", last_name="Smith", email="alex.smith@example.com",
                        birthday=datetime.date(1990, 9, 1), nationality="FR",
                        country_of_residence="FR", address=paris_address(), user_category="OWNER",
                        terms_and_conditions_accepted=True, tag=tag)
    owner.save()
    return owner


def bank_accounts(owner):
    print("create an IBAN bank account")
    iban = BankAccount(owner_name="Alex Smith", owner_address=paris_address(), user=owner,
                       type="IBAN", iban="FR76 3000 4000 0312 3456 7890 143", bic="BNPAFRPP",
                       tag="python sdk iban")
    iban.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST answered 200")
    check(url.endswith("/users/%s/bankaccounts/IBAN" % owner.id), "the SDK called %s" % url)
    check(iban.id.startswith("bankacc_m_"), "Id %s has the bankacc_m_ prefix" % iban.id)
    check(iban.active is True, "Active is true")
    check(iban.iban == "FR7630004000031234567890143", "the IBAN comes back without spaces")
    body = last_json()
    check(sorted(body) == sorted(["OwnerAddress", "IBAN", "BIC", "UserId", "OwnerName", "Type",
                                  "Id", "Tag", "CreationDate", "Active"]),
          "the object has the reference's keys: %s" % sorted(body))
    check(body["Type"] == "IBAN" and body["UserId"] == owner.id, "Type IBAN, owned by the user")
    check(isinstance(body["CreationDate"], int), "CreationDate is an integer timestamp")

    print("create GB, US, CA and OTHER bank accounts")
    others = {
        "GB": dict(account_number="11696419", sort_code="010039"),
        "US": dict(account_number="11696419", aba="071000288", deposit_account_type="SAVINGS"),
        "CA": dict(account_number="11696419", institution_number="614", branch_code="00152",
                   bank_name="The Bank"),
        "OTHER": dict(account_number="11696419", bic="BNPAFRPP", country="FR"),
    }
    created = {"IBAN": iban.id}
    for kind, details in others.items():
        account = BankAccount(owner_name="Alex Smith", owner_address=paris_address(),
                              user=owner, type=kind, tag="python sdk %s" % kind.lower(),
                              **details)
        account.save()
        method, url, status = last_exchange()
        check(status == 200 and url.endswith("/bankaccounts/%s" % kind),
              "POST /bankaccounts/%s answered 200" % kind)
        check(last_json()["Type"] == kind, "Type is %s" % kind)
        created[kind] = account.id
    check(last_json()["Country"] == "FR", "the OTHER account keeps its Country")
    us = BankAccount.get(created["US"], user_id=owner.id)
    check(us.deposit_account_type == "SAVINGS" and us.aba == "071000288",
          "the US account is viewed with its ABA and deposit type")

    print("a bad IBAN checksum is a param_error on IBAN")
    err = expect_api_error(lambda: BankAccount(owner_name="Alex Smith", owner_address=paris_address(),
                                               user=owner, type="IBAN",
                                               iban="FR7630004000031234567890144").save(), 400)
    check(err.content["Type"] == "param_error", "the 400 is a param_error")
    check(err.content["errors"] == {"IBAN": "The value is not a valid IBAN"},
          "errors: %s" % err.content["errors"])
    err = expect_api_error(lambda: BankAccount(owner_name="Alex Smith", owner_address=paris_address(),
                                               user=owner, type="GB", account_number="1169641",
                                               sort_code="01-00-39").save(), 400)
    check(sorted(err.content["errors"]) == ["AccountNumber", "SortCode"],
          "a bad GB account names AccountNumber and SortCode")

    print("view and list the bank accounts")
    viewed = BankAccount.get(iban.id, user_id=owner.id)
    check(viewed.id == iban.id and viewed.bic == "BNPAFRPP", "GET answers the IBAN account")
    listed = [account.id for account in owner.bankaccounts.all()]
    check(listed == [created[kind] for kind in ("IBAN", "GB", "US", "CA", "OTHER")],
          "the user's list holds the five accounts, oldest first")
    newest = BankAccount.all(user_id=owner.id, sort="CreationDate:DESC", page=1, per_page=2)
    check([a.id for a in newest] == [created["OTHER"], created["CA"]],
          "CreationDate:DESC with per_page=2 gives the two newest")
    check(int(newest.total_items) == 5, "X-Number-Of-Items counts all five")

    print("deactivate the IBAN account, for good")
    iban.deactivate()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT answered 200")
    check(last_json()["Active"] is False, "the answer has Active false")
    check(BankAccount.get(iban.id, user_id=owner.id).active is False, "GET shows Active false")
    active = BankAccount.all(user_id=owner.id, Active="true")
    check(iban.id not in [a.id for a in active] and len(active) == 4,
          "Active=true lists the four others")
    err = expect_api_error(lambda: BankAccount.update(iban.id, active=True, user_id=owner.id).execute(), 400)
    check("Active" in err.content["errors"], "reactivation is refused on Active")

    print("a keyed create is replayed by GET /responses/{key}")
    key = str(uuid.uuid4())
    account = BankAccount(owner_name="Alex Smith", owner_address=paris_address(), user=owner,
                          type="IBAN", iban="DE89370400440532013000", tag="python sdk keyed")
    account.save(idempotency_key=key)
    replay = IdempotencyResponse.get(key)
    check(replay.status == "200" and replay.resource["Id"] == account.id,
          "the stored answer names the account")


def recipients(owner):
    print("payout methods and schema")
    methods = PayoutMethod.get("GB", "GBP")
    check(methods.available_payout_methods == ["LocalBankTransfer", "InternationalBankTransfer"],
          "GBP to GB: local and international")
    schema = RecipientSchema.get("LocalBankTransfer", "Individual", "GBP", "GB")
    check(schema.display_name.required is True, "DisplayName is required")
    gbp = schema.local_bank_transfer["GBP"]
    check(gbp["SortCode"]["Pattern"] == "^\\d{6}$" and gbp["AccountNumber"]["MinLength"] == 8,
          "the GBP local schema gives SortCode and AccountNumber rules")

    local = dict(display_name="Alex Smith GBP account", payout_method_type="LocalBankTransfer",
                 recipient_type="Individual", currency="GBP", country="GB",
                 individual_recipient=IndividualRecipient(first_name="Alex", last_name="Smith",
                                                          address=london_address()),
                 local_bank_transfer={"GBP": {"AccountNumber": "55779911", "SortCode": "200000"}},
                 tag="python sdk recipient")

    print("validate recipient data")
    Recipient(**local).validate(owner.id)
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200) and url.endswith("/recipients/validate"),
          "a valid body answers 200")
    check(EXCHANGES[-1][3].content == b"", "with no body")
    bad = dict(local, local_bank_transfer={"GBP": {"AccountNumber": "5577", "SortCode": "200000"}})
    err = expect_api_error(lambda: Recipient(**bad).validate(owner.id), 400)
    check(err.content["Errors"] == {"LocalBankTransfer.GBP.AccountNumber": "LENGTH_LESS_THAN_MIN"},
          "Errors: %s" % err.content["Errors"])

    print("create a PAYOUT recipient: PENDING with an SCA link")
    created = Recipient(**local).create(owner.id, idempotency_key=str(uuid.uuid4()))
    method, url, status = last_exchange()
    check((method, status) == ("POST", 201), "POST /users/{Id}/recipients answered 201")
    check(created["id"].startswith("rec_"), "Id %s has the rec_ prefix" % created["id"])
    check(created["status"] == "PENDING", "Status is PENDING")
    check(created["recipient_scope"] == "PAYOUT", "RecipientScope defaults to PAYOUT")
    link = created["pending_user_action"].redirect_url
    check(link.startswith("https://"), "PendingUserAction.RedirectUrl is %s" % link)

    print("create a business EUR international PAYIN recipient")
    payin = Recipient(display_name="Alex Smith EUR account", payout_method_type="InternationalBankTransfer",
                      recipient_type="Business", currency="EUR", country="FR", recipient_scope="PAYIN",
                      business_recipient=BusinessRecipient(business_name="Alex Smith Consulting",
                                                           address=paris_address()),
                      international_bank_transfer={"AccountNumber": "FR7630004000031234567890143"})
    payin = payin.create(owner.id)
    check(payin["status"] == "PENDING" and payin.get("pending_user_action") is None,
          "a PAYIN recipient has no SCA link")
    check(payin["international_bank_transfer"]["BIC"][4:6] == "FR", "a BIC is derived from the IBAN")

    print("view and list")
    viewed = Recipient.get(created["id"])
    check(viewed.status == "PENDING" and viewed.display_name == "Alex Smith GBP account",
          "GET /recipients/{Id} answers it")
    listed = Recipient.get_user_recipients(owner.id)
    check([r.id for r in listed] == [created["id"]], "the default list holds the PAYOUT recipient")
    payins = Recipient.get_user_recipients(owner.id, RecipientScope="PAYIN")
    check([r.id for r in payins] == [payin["id"]], "RecipientScope=PAYIN lists the PAYIN one")

    print("a PENDING recipient cannot be deactivated")
    err = expect_api_error(lambda: Recipient.deactivate(created["id"], status="DEACTIVATED"), 400)
    check(err.content["Message"] == "Invalid State", "the 400 says Invalid State")

    print("the control request completes the SCA")
    answer = control("/_sandbox/recipients/%s/status" % created["id"], {"Status": "ACTIVE"})
    check(answer.status_code == 200 and answer.json()["Status"] == "ACTIVE",
          "the control request answers the ACTIVE recipient")
    viewed = Recipient.get(created["id"])
    check(viewed.status == "ACTIVE" and viewed.pending_user_action is None,
          "GET shows ACTIVE without PendingUserAction")
    again = control("/_sandbox/recipients/%s/status" % created["id"], {"Status": "CANCELED"})
    check(again.status_code == 400, "only a PENDING recipient can be settled")

    print("deactivate the ACTIVE recipient")
    deactivated = Recipient.deactivate(created["id"], status="DEACTIVATED")
    check(deactivated["status"] == "DEACTIVATED", "Status is DEACTIVATED")
    check(Recipient.get(created["id"]).status == "DEACTIVATED", "GET shows DEACTIVATED")


def main():
    print("Python SDK %s against %s (client %s)" % (mangopay.package_version, API_URL, CLIENT_ID))
    print("create a natural OWNER user")
    owner = create_owner("python sdk bank owner")
    check(owner.id.startswith("user_m_"), "user %s created" % owner.id)
    bank_accounts(owner)
    recipients(owner)
    print("python_bank: all checks passed (%d HTTP exchanges)" % len(EXCHANGES))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # every failure, including SDK errors, fails the run
        traceback.print_exc()
        print("python_bank: FAILED", file=sys.stderr)
        sys.exit(1)
