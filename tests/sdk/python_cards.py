"""Drive the diesel-mangopay sandbox with the official Mangopay Python SDK
(`mangopay4-python-sdk`, module `mangopay`) through money in: a card
registration, the card's tokenization (a plain HTTP form POST to the
registration's CardRegistrationURL, as the SDK's own test helpers do), the
card, a direct card pay-in and a partial refund of it.

Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
SANDBOX_API_KEY. Prints each step; exits non-zero on the first mismatch.
"""

import datetime
import logging
import os
import sys
import traceback
import urllib.parse
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
    Card,
    CardRegistration,
    DirectPayIn,
    NaturalUser,
    PayIn,
    PayInRefund,
    Refund,
    Wallet,
)
from mangopay.signals import request_finished  # noqa: E402
from mangopay.utils import Address, BrowserInfo, Money  # noqa: E402

# The test card whose pay-ins succeed without 3-D Secure.
CARD_NUMBER = "4970107111111119"

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


def tokenize(registration, number, expiry, cvx):
    """The tokenization POST: a form to CardRegistrationURL, no authentication; the text
    answer."""
    form = urllib.parse.urlencode({
        "data": registration.preregistration_data,
        "accessKeyRef": registration.access_key,
        "cardNumber": number,
        "cardExpirationDate": expiry,
        "cardCvx": cvx,
    }).encode()
    request = urllib.request.Request(registration.card_registration_url, data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request) as response:
        return response.status, response.read().decode()


def paris_address():
    return Address(address_line_1="3 rue de la Cite", address_line_2="Appartement 7",
                   city="Paris", region="Ile-de-France", postal_code="75004", country="FR")


def eur(amount):
    return Money(amount=amount, currency="EUR")


def balance(wallet):
    return Wallet.get(wallet.id).balance.amount


def main():
    print("Python SDK %s against %s (client %s)" % (mangopay.package_version, API_URL, CLIENT_ID))

    print("a natural user and a EUR wallet")
    alice = NaturalUser(first_name="Alice", last_name="Smith", email="alice@example.com",
                        birthday=datetime.date(1990, 9, 1), nationality="FR", country_of_residence="FR",
                        address=paris_address(), user_category="OWNER",
                        terms_and_conditions_accepted=True, tag="python sdk cards")
    alice.save()
    wallet = Wallet(owners=[alice], description="Alice's EUR wallet", currency="EUR", tag="python cards")
    wallet.save()
    check(balance(wallet) == 0, "the wallet starts empty")

    print("a card registration")
    registration = CardRegistration(user=alice, currency="EUR", card_type="CB_VISA_MASTERCARD")
    registration.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /cardregistrations answered 200")
    check(url.endswith("/cardregistrations"), "the SDK called %s" % url)
    check(registration.id.startswith("cardreg_m_"), "Id %s has the cardreg_m_ prefix" % registration.id)
    check(registration.status == "CREATED", "Status CREATED")
    check(registration.access_key and registration.preregistration_data, "AccessKey and PreregistrationData")
    check(registration.card_registration_url.startswith(BASE_URL + "/"),
          "CardRegistrationURL points at the sandbox: %s" % registration.card_registration_url)
    err = expect_api_error(lambda: CardRegistration(user=alice, currency="EUR", card_type="DINERS").save(), 400)
    check("CardType" in err.content["errors"], "an unknown CardType is a param_error naming CardType")

    print("the card is tokenized by a form POST to CardRegistrationURL")
    now = datetime.date.today()
    expiry = "%02d%02d" % (now.month, (now.year + 3) % 100)
    status, refused = tokenize(registration, "4970107111111118", expiry, "123")
    check(status == 200 and refused == "errorCode=105202", "a number failing Luhn: errorCode=105202")
    status, data = tokenize(registration, CARD_NUMBER, expiry, "123")
    check(status == 200 and data.startswith("data="), "the tokenizer answered data=<token>")

    print("the registration is updated with RegistrationData")
    registration.registration_data = data
    registration.card_holder_name = "Alice Smith"
    registration.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT /cardregistrations/{Id} answered 200")
    check(registration.status == "VALIDATED", "Status VALIDATED")
    check(registration.result_code == "000000", "ResultCode 000000")
    check(registration.registration_data == data, "RegistrationData echoed")
    check(registration.card_id and registration.card_id.startswith("card_m_"),
          "CardId %s set" % registration.card_id)
    viewed = CardRegistration.get(registration.id)
    check(viewed.status == "VALIDATED" and viewed.card_id == registration.card_id,
          "GET /cardregistrations/{Id} reads it back")

    print("the card")
    card = Card.get(registration.card_id)
    check(last_exchange()[1].endswith("/cards/%s" % registration.card_id), "the SDK called GET /cards/{Id}")
    check(card.alias == "497010XXXXXX1119", "Alias %s masks the number" % card.alias)
    check(card.expiration_date == expiry, "ExpirationDate %s" % card.expiration_date)
    check(card.card_provider == "VISA", "CardProvider VISA")
    check(card.validity == "UNKNOWN", "a new card's Validity is UNKNOWN")
    check(card.active is True, "the card is active")
    check(card.currency == "EUR", "Currency EUR")
    check(card.card_holder_name == "Alice Smith", "CardHolderName kept on the card")
    check(card.fingerprint and CARD_NUMBER not in str(last_json()), "a Fingerprint, and never the number")

    print("a direct card pay-in")
    browser = BrowserInfo(accept_header="text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8",
                          java_enabled=True, javascript_enabled=True, language="fr-FR", color_depth=24,
                          screen_height=1080, screen_width=1920, timezone_offset="+60",
                          user_agent="Mozilla/5.0 (X11; Linux x86_64)")
    payin = DirectPayIn(author=alice, credited_wallet=wallet, debited_funds=eur(10000), fees=eur(100),
                        card=card, secure_mode="DEFAULT", secure_mode_return_url="https://example.com/return",
                        browser_info=browser, ip_address="2001:0620:0000:0000:0211:24FF:FE80:C12C",
                        statement_descriptor="PYTHON", tag="python payin")
    payin.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /payins/card/direct answered 200")
    check(url.endswith("/payins/card/direct"), "the SDK called %s" % url)
    check(payin.id.startswith("payin_m_"), "Id %s has the payin_m_ prefix" % payin.id)
    check(payin.status == "SUCCEEDED", "the pay-in SUCCEEDED")
    check(payin.result_code == "000000", "ResultCode 000000")
    check(payin.type == "PAYIN" and payin.nature == "REGULAR", "Type PAYIN, Nature REGULAR")
    check(payin.security_info.avs_result == "NO_CHECK", "SecurityInfo.AVSResult NO_CHECK")
    check(payin.card_info is not None and payin.card_info.bin == "497010", "CardInfo with the BIN")
    check(payin.credited_funds.amount == 9900, "CreditedFunds = DebitedFunds - Fees")
    check(isinstance(payin.execution_date, datetime.datetime), "ExecutionDate is set")
    viewed = PayIn.get(payin.id)
    check(isinstance(viewed, DirectPayIn), "PayIn.get casts it to DirectPayIn")
    check(viewed.status == "SUCCEEDED" and viewed.tag == "python payin", "GET /payins/{Id} reads it back")
    check(balance(wallet) == 9900, "the wallet holds 9900")
    check(Card.get(card.id).validity == "VALID", "the card became VALID")

    print("a partial refund")
    refund = PayInRefund(payin=payin, author=alice, debited_funds=eur(3000), fees=eur(-30), tag="python refund")
    refund.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST /payins/{Id}/refunds answered 200")
    check(url.endswith("/payins/%s/refunds" % payin.id), "the SDK called %s" % url)
    check(refund.id.startswith("refund_m_"), "Id %s has the refund_m_ prefix" % refund.id)
    check(refund.status == "SUCCEEDED", "the refund SUCCEEDED")
    check(refund.type == "PAYOUT" and refund.nature == "REFUND", "Type PAYOUT, Nature REFUND")
    check(refund.debited_funds.amount == 3000 and refund.fees.amount == -30, "DebitedFunds 3000, Fees -30")
    check(refund.initial_transaction_id == payin.id, "InitialTransactionId is the pay-in")
    viewed = Refund.get(refund.id)
    check(last_exchange()[1].endswith("/refunds/%s" % refund.id), "the SDK called GET /refunds/{Id}")
    check(viewed.status == "SUCCEEDED" and viewed.initial_transaction_type == "PAYIN",
          "GET /refunds/{Id} reads it back")
    check(balance(wallet) == 9900 - 2970, "the wallet gave back 2970 (the fees wallet the other 30)")
    err = expect_api_error(lambda: PayInRefund(payin=payin, author=alice, debited_funds=eur(7001),
                                               fees=eur(0)).save(), 400)
    check("DebitedFunds" in err.content["errors"], "refunding more than is left is a param_error on DebitedFunds")

    print("the card is deactivated")
    card.active = False
    card.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200) and url.endswith("/cards/%s" % card.id),
          "PUT /cards/{Id} answered 200")
    check(Card.get(card.id).active is False, "the card is no longer active")

    print("python_cards: all checks passed (%d HTTP exchanges)" % len(EXCHANGES))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # every failure, including SDK errors, fails the run
        traceback.print_exc()
        print("python_cards: FAILED", file=sys.stderr)
        sys.exit(1)
