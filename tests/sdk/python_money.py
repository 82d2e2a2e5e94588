"""Drive the diesel-mangopay sandbox with the official Mangopay Python SDK
(`mangopay4-python-sdk`, module `mangopay`) through the money flows: wallets,
transfers, an IBAN bank account, pay-outs and the transaction lists. Funds
arrive, and pay-outs settle, through the sandbox's control requests (plain HTTP).

Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
SANDBOX_API_KEY. Prints each step; exits non-zero on the first mismatch.
"""

import datetime
import json
import logging
import os
import sys
import traceback
import urllib.error
import urllib.request

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

from mangopay.exceptions import APIError  # noqa: E402
from mangopay.resources import (  # noqa: E402
    BankAccount,
    BankWirePayOut,
    NaturalUser,
    PayOutEligibility,
    Transaction,
    Transfer,
    Wallet,
)
from mangopay.signals import request_finished  # noqa: E402
from mangopay.utils import Address, Money  # noqa: E402

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


def control(path, body):
    """A control request: plain HTTP, no authentication; returns (status, JSON body)."""
    request = urllib.request.Request(BASE_URL + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def paris_address():
    return Address(address_line_1="3 rue de la Cite", address_line_2="Appartement 7",
                   city="Paris", region="Ile-de-France", postal_code="75004", country="FR")


def natural_owner(first_name):
    user = NaturalUser(first_name=first_name, last_name="Smith", email="%s@example.com" % first_name.lower(),
                       birthday=datetime.date(1990, 9, 1), nationality="FR", country_of_residence="FR",
                       address=paris_address(), user_category="OWNER",
                       terms_and_conditions_accepted=True, tag="python sdk money")
    user.save()
    return user


def eur(amount):
    return Money(amount=amount, currency="EUR")


def balance(wallet):
    return Wallet.get(wallet.id).balance.amount


def main():
    print("Python SDK %s against %s (client %s)" % (mangopay.package_version, API_URL, CLIENT_ID))

    print("two users, one EUR wallet each")
    alice = natural_owner("Alice")
    bob = natural_owner("Bob")
    alices = Wallet(owners=[alice], description="Alice's EUR wallet", currency="EUR", tag="python alice")
    alices.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /wallets answered 200")
    check(url.endswith("/wallets"), "the SDK called %s" % url)
    check(alices.id.startswith("wlt_m_"), "Id %s has the wlt_m_ prefix" % alices.id)
    body = last_json()
    check(body["Owners"] == [alice.id], "Owners holds the owner's Id")
    check(body["Balance"] == {"Currency": "EUR", "Amount": 0}, "the Balance starts at EUR 0")
    check(body["FundsType"] == "DEFAULT", "FundsType is DEFAULT")
    check(isinstance(body["CreationDate"], int), "CreationDate is an integer timestamp")
    check(alices.balance.amount == 0 and alices.balance.currency == "EUR", "the SDK reads the Balance as Money")
    bobs = Wallet(owners=[bob], description="Bob's EUR wallet", currency="EUR", tag="python bob")
    bobs.save()

    print("view, list and update a wallet")
    viewed = Wallet.get(alices.id)
    check(viewed.description == "Alice's EUR wallet", "GET /wallets/{Id} reads the Description back")
    check(viewed.tag == "python alice", "and the Tag")
    check(isinstance(viewed.creation_date, datetime.datetime), "CreationDate parses as a datetime")
    listed = alice.list(Wallet)
    check(last_exchange()[1].endswith("/users/%s/wallets" % alice.id), "the SDK listed /users/{Id}/wallets")
    check([w.id for w in listed] == [alices.id], "Alice's list holds her wallet only")
    viewed.description = "Alice's main wallet"
    viewed.tag = "python alice updated"
    viewed.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT /wallets/{Id} answered 200")
    again = Wallet.get(alices.id)
    check(again.description == "Alice's main wallet" and again.tag == "python alice updated",
          "the update is stored")
    check(again.currency == "EUR" and last_json()["Owners"] == [alice.id], "Currency and Owners are unchanged")
    err = expect_api_error(lambda: Wallet(owners=[alice], description="x", currency="AZN").save(), 400)
    check(err.content["errors"].get("Currency") == "Currency: The currency AZN is not available",
          "an unsupported currency is a param_error naming Currency")

    print("funds arrive through the control request")
    status, credited = control("/_sandbox/wallets/%s/credit" % alices.id, {"Amount": 10000})
    check(status == 200, "POST /_sandbox/wallets/{Id}/credit answered 200")
    check(credited["Balance"]["Amount"] == 10000, "the wallet holds EUR 100.00")
    check(balance(alices) == 10000, "the SDK sees the new balance")

    print("a transfer moves money")
    transfer = Transfer(author=alice, credited_user=bob, debited_funds=eur(3000), fees=eur(100),
                        debited_wallet=alices, credited_wallet=bobs, tag="python transfer")
    transfer.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /transfers answered 200")
    check(transfer.id.startswith("xfer_m_"), "Id %s has the xfer_m_ prefix" % transfer.id)
    check(transfer.status == "SUCCEEDED", "the transfer SUCCEEDED")
    check(transfer.result_code == "000000", "ResultCode 000000")
    check(transfer.credited_funds.amount == 2900, "CreditedFunds = DebitedFunds - Fees")
    check(isinstance(transfer.execution_date, datetime.datetime), "ExecutionDate is set")
    check(balance(alices) == 7000 and balance(bobs) == 2900, "7000 left, 2900 credited")
    viewed = Transfer.get(transfer.id)
    check(viewed.status == "SUCCEEDED" and viewed.tag == "python transfer", "GET /transfers/{Id} reads it back")
    check(last_json()["Type"] == "TRANSFER" and last_json()["Nature"] == "REGULAR", "Type TRANSFER, Nature REGULAR")

    print("a transfer the wallet cannot cover is created FAILED")
    failed = Transfer(author=alice, credited_user=bob, debited_funds=eur(1000000), fees=eur(0),
                      debited_wallet=alices, credited_wallet=bobs, tag="python too much")
    failed.save()
    check(last_exchange()[2] == 200, "it answers 200, not an HTTP error")
    check(failed.status == "FAILED", "Status FAILED")
    check(failed.result_code == "001001", "ResultCode 001001")
    check(failed.result_message == "Unsufficient wallet balance", "ResultMessage as documented")
    check(failed.execution_date is None, "no ExecutionDate")
    check(balance(alices) == 7000, "nothing moved")

    print("an IBAN bank account and a pay-out")
    account = BankAccount(user=alice, type="IBAN", owner_name="Alice Smith", owner_address=paris_address(),
                          iban="FR7630004000031234567890143", bic="BNPAFRPP", tag="python account")
    account.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST %s answered 200" % url)
    payout = BankWirePayOut(author=alice, debited_funds=eur(2000), fees=eur(20), debited_wallet=alices,
                            bank_account=account, bank_wire_ref="python ref",
                            payout_mode_requested="STANDARD", tag="python payout")
    payout.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /payouts/bankwire answered 200")
    check(payout.id.startswith("po_m_"), "Id %s has the po_m_ prefix" % payout.id)
    check(payout.status == "CREATED", "the pay-out is CREATED")
    check(payout.execution_date is None, "no ExecutionDate yet")
    check(payout.mode_requested == "STANDARD", "ModeRequested echoes PayoutModeRequested")
    check(payout.payment_type == "BANK_WIRE", "PaymentType BANK_WIRE")
    check(payout.credited_funds.amount == 1980, "CreditedFunds = DebitedFunds - Fees")
    check(balance(alices) == 5000, "the wallet is debited at once")
    viewed = BankWirePayOut.get(payout.id)
    check(viewed.status == "CREATED" and viewed.bank_wire_ref == "python ref", "GET /payouts/{Id} reads it back")
    check("ModeApplied" not in last_json(), "without the payout mode")
    with_mode = BankWirePayOut.get_bankwire(payout.id)
    check(with_mode.mode_applied == "PENDING_RESPONSE", "GET /payouts/bankwire/{Id} shows ModeApplied")

    print("the pay-out settles through the control request")
    status, settled = control("/_sandbox/payouts/%s/settle" % payout.id, {"Status": "SUCCEEDED"})
    check(status == 200 and settled["Status"] == "SUCCEEDED", "the control request settled it")
    viewed = BankWirePayOut.get(payout.id)
    check(viewed.status == "SUCCEEDED" and viewed.result_code == "000000", "the SDK sees it SUCCEEDED")
    check(isinstance(viewed.execution_date, datetime.datetime), "with an ExecutionDate")
    status, _ = control("/_sandbox/payouts/%s/settle" % payout.id, {"Status": "FAILED"})
    check(status == 400, "a settled pay-out cannot settle again")

    refused = BankWirePayOut(author=alice, debited_funds=eur(1000), fees=eur(0), debited_wallet=alices,
                             bank_account=account, tag="python refused")
    refused.save()
    check(balance(alices) == 4000, "a second pay-out debits the wallet")
    status, settled = control("/_sandbox/payouts/%s/settle" % refused.id, {"Status": "FAILED"})
    check(status == 200 and settled["ResultCode"] == "121999", "it fails with the generic withdrawal error")
    check(balance(alices) == 5000, "its funds are back in the wallet")
    check(BankWirePayOut.get(refused.id).status == "FAILED", "the SDK sees it FAILED")

    print("instant pay-out eligibility")
    eligibility = PayOutEligibility(author=alice, debited_funds=eur(100), fees=eur(0), bank_account=account,
                                    debited_wallet=alices, payout_mode_requested="INSTANT_PAYMENT")
    result = eligibility.check_eligibility()
    check(last_exchange()[1].endswith("/payouts/reachability"), "the SDK called /payouts/reachability")
    # The SDK answers a dict of the parsed fields.
    check(result["instant_payout"].is_reachable is True, "the destination bank is reachable")
    check(result["instant_payout"].unreachable_reason is None, "no UnreachableReason")

    print("the transaction lists find everything by Tag, newest first")
    newest = alices.list(Transaction, sort="CreationDate:DESC", per_page=10)
    check(last_exchange()[1].split("?")[0].endswith("/wallets/%s/transactions" % alices.id),
          "the SDK listed /wallets/{Id}/transactions")
    tags = [t.tag for t in newest]
    check(tags == ["python refused", "python payout", "python too much", "python transfer"],
          "the wallet's transactions, newest first: %s" % tags)
    check(newest[0].type == "PAYOUT" and newest[3].type == "TRANSFER", "Type tells pay-outs from transfers")
    payouts = alices.list(Transaction, type="PAYOUT")
    check({t.id for t in payouts} == {payout.id, refused.id}, "Type=PAYOUT keeps the pay-outs")
    succeeded = Transaction.all(user_id=alice.id, status="SUCCEEDED")
    check([t.id for t in succeeded] == [transfer.id, payout.id],
          "GET /users/{Id}/transactions?Status=SUCCEEDED: what Alice authored and went through")
    check(int(succeeded.total_items) == 2, "X-Number-Of-Items is 2")
    bobs_list = bobs.list(Transaction)
    check({t.id for t in bobs_list} == {transfer.id, failed.id}, "Bob's wallet saw both transfers")

    print("python_money: all checks passed (%d HTTP exchanges)" % len(EXCHANGES))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # every failure, including SDK errors, fails the run
        traceback.print_exc()
        print("python_money: FAILED", file=sys.stderr)
        sys.exit(1)
