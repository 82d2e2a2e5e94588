"""Drive the diesel-mangopay sandbox with the official Mangopay Python SDK
(`mangopay4-python-sdk`, module `mangopay`) through the verification flows: a KYC document
of a natural OWNER from its creation to its validation (a real PNG page generated here, the
review ended by the sandbox's control request, plain HTTP as it is not Mangopay's API) and
the user's KYCLevel becoming REGULAR; the file checks; and a UBO declaration of a legal
BUSINESS user.

Environment: SANDBOX_URL (e.g. http://127.0.0.1:PORT), SANDBOX_CLIENT_ID,
SANDBOX_API_KEY. Prints each step; exits non-zero on the first mismatch.
"""

import base64
import datetime
import hashlib
import logging
import os
import random
import struct
import sys
import traceback
import zlib

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
    Document, LegalUser, NaturalUser, Page, Ubo, UboDeclaration, User,
)
from mangopay.signals import request_finished  # noqa: E402
from mangopay.utils import Address, Birthplace  # noqa: E402

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


def control(path, body):
    """A control request of the sandbox: no authentication, JSON in and out."""
    return requests.post(BASE_URL + path, json=body, timeout=10)


def paris_address():
    return Address(address_line_1="3 rue de la Cite", address_line_2="Appartement 7",
                   city="Paris", region="Ile de France", postal_code="75004", country="FR")


def png(width, height, seed):
    """A real PNG of random RGB pixels: noise does not compress, so its size is about
    width * height * 3 bytes."""
    noise = random.Random(seed)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(noise.getrandbits(8) for _ in range(width * 3))
                    for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def identity_document(owner):
    print("create a KYC document")
    document = Document(type="IDENTITY_PROOF", user=owner, tag="python sdk identity")
    document.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200), "POST answered 200")
    check(url.endswith("/users/%s/KYC/documents" % owner.id), "the SDK called %s" % url)
    check(document.id.startswith("kyc_"), "Id %s has the kyc_ prefix" % document.id)
    check(document.status == "CREATED", "Status is CREATED")
    body = last_json()
    check(sorted(body) == sorted(["Type", "UserId", "Flags", "Id", "Tag", "CreationDate",
                                  "ProcessedDate", "Status", "RefusedReasonType",
                                  "RefusedReasonMessage"]),
          "the object has the reference's keys: %s" % sorted(body))
    check(body["Flags"] == [] and body["ProcessedDate"] is None, "no flags, not processed")

    print("add a page: a real PNG above the identity proof's 32 KB minimum")
    image = png(128, 128, seed=7)
    check(len(image) > 32 * 1024, "the PNG is %d bytes" % len(image))
    Page(document=document, file=b64(image), user=owner).save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 204), "POST .../pages answered 204")
    check(url.endswith("/users/%s/KYC/documents/%s/pages" % (owner.id, document.id)),
          "the SDK called %s" % url)

    print("submit it")
    document.status = "VALIDATION_ASKED"
    document.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200), "PUT answered 200")
    check(last_json()["Status"] == "VALIDATION_ASKED", "Status is VALIDATION_ASKED")
    err = expect_api_error(lambda: Page(document=document, file=b64(image), user=owner).save(), 400)
    check(err.content["Type"] == "invalid_action", "no page once submitted")

    print("view it and list the user's documents")
    viewed = Document.get(document.id)
    check(viewed.id == document.id and viewed.status == "VALIDATION_ASKED",
          "GET /KYC/documents/{Id} shows VALIDATION_ASKED")
    listed = [d.id for d in owner.documents.all()]
    check(listed == [document.id], "the user's list holds the document")
    asked = Document.all(Status="VALIDATION_ASKED", Type="IDENTITY_PROOF")
    check(document.id in [d.id for d in asked], "the client-wide list filters on Status and Type")

    print("the control request validates it")
    answer = control("/_sandbox/kyc/documents/%s/outcome" % document.id, {"Status": "VALIDATED"})
    check(answer.status_code == 200 and answer.json()["Status"] == "VALIDATED",
          "the control request answers the VALIDATED document")
    viewed = Document.get(document.id)
    check(viewed.status == "VALIDATED", "GET shows VALIDATED")
    check(isinstance(last_json()["ProcessedDate"], int), "ProcessedDate is an integer timestamp")
    check(isinstance(viewed.processed_date, datetime.datetime), "the SDK reads ProcessedDate")
    user = User.get(owner.id)
    check(last_json()["KYCLevel"] == "REGULAR", "the user's KYCLevel is REGULAR")
    check(last_json()["ProofOfIdentity"] == document.id, "ProofOfIdentity names the document")
    check(user.id == owner.id, "the user is read back")
    return image


def refusals(owner, image):
    print("a refused document carries its reason")
    document = Document(type="ADDRESS_PROOF", user=owner)
    document.save()
    Page(document=document, file=b64(image), user=owner).save()
    document.status = "VALIDATION_ASKED"
    document.save()
    answer = control("/_sandbox/kyc/documents/%s/outcome" % document.id,
                     {"Status": "REFUSED", "RefusedReasonType": "DOCUMENT_UNREADABLE",
                      "RefusedReasonMessage": "The scan is blurred", "Flags": ["009004"]})
    check(answer.status_code == 200, "the control request refuses it")
    viewed = Document.get(document.id)
    check(viewed.status == "REFUSED" and viewed.refused_reason_type == "DOCUMENT_UNREADABLE",
          "GET shows REFUSED, DOCUMENT_UNREADABLE")
    check(viewed.refused_reason_message == "The scan is blurred" and viewed.flags == ["009004"],
          "the message and flags round-trip")

    print("the file checks")
    check_document = Document(type="IDENTITY_PROOF", user=owner)
    check_document.save()
    text = ("This is a text file named scan.png. " * 1500).encode("ascii")
    err = expect_api_error(lambda: Page(document=check_document, file=b64(text), user=owner).save(),
                           415)
    check("File" in err.content["errors"], "a text file is refused on File")
    small = png(16, 16, seed=3)
    err = expect_api_error(lambda: Page(document=check_document, file=b64(small), user=owner).save(),
                           400)
    check(err.content["errors"] == {"File": "The file is too small to be readable"},
          "a %d-byte PNG is too small for an identity proof" % len(small))
    err = expect_api_error(lambda: Page(document=check_document, file="not base64!",
                                        user=owner).save(), 400)
    check(err.content["Type"] == "param_error", "text that is not base64 is a param_error")
    check_document.status = "VALIDATION_ASKED"
    err = expect_api_error(lambda: check_document.save(), 400)
    check(err.content["Type"] == "invalid_action", "a document without pages cannot be submitted")


def ubo_declaration():
    print("a UBO declaration of a legal BUSINESS owner")
    legal = LegalUser(name="Best Business", email="best.business@example.com",
                      legal_person_type="BUSINESS", user_category="OWNER",
                      terms_and_conditions_accepted=True, headquarters_address=paris_address(),
                      company_number="123456789", legal_representative_first_name="Alex",
                      legal_representative_last_name="Smith",
                      legal_representative_email="alex.smith@example.com",
                      legal_representative_birthday=datetime.date(1990, 9, 1),
                      legal_representative_nationality="FR",
                      legal_representative_country_of_residence="FR",
                      legal_representative_address=paris_address())
    legal.save()
    declaration = UboDeclaration(user=legal)
    declaration.save()
    method, url, status = last_exchange()
    check((method, status) == ("POST", 200) and url.endswith("/users/%s/kyc/ubodeclarations" % legal.id),
          "POST /kyc/ubodeclarations answered 200")
    check(declaration.status == "CREATED" and last_json()["Ubos"] == [], "CREATED, no UBOs")

    ubo = Ubo(user=legal, ubo_declaration=declaration, first_name="Michaela", last_name="Effertz",
              birthday=datetime.date(1990, 9, 1), nationality="FR", address=paris_address(),
              birthplace=Birthplace(city="Paris", country="FR"))
    ubo.save()
    check(last_exchange()[2] == 200 and ubo.id.startswith("ubo_m_"), "UBO %s created" % ubo.id)
    check(last_json()["IsActive"] is True, "the UBO is active")

    declaration = UboDeclaration.get(declaration.id, user_id=legal.id)
    check(len(declaration.ubos) == 1, "the declaration holds the UBO")
    check(last_json()["UserId"] == legal.id, "UserId names the legal user")
    # The SDK reads the user from a `User` key the API does not send: set it before saving.
    declaration.user = legal
    declaration.status = "VALIDATION_ASKED"
    declaration.save()
    method, url, status = last_exchange()
    check((method, status) == ("PUT", 200) and last_json()["Status"] == "VALIDATION_ASKED",
          "the declaration is submitted")
    answer = control("/_sandbox/kyc/ubodeclarations/%s/outcome" % declaration.id,
                     {"Status": "VALIDATED"})
    check(answer.status_code == 200 and answer.json()["Status"] == "VALIDATED",
          "the control request validates it")
    viewed = UboDeclaration.get(declaration.id, user_id=legal.id)
    check(viewed.status == "VALIDATED", "GET shows VALIDATED")


def main():
    print("Python SDK %s against %s (client %s)" % (mangopay.package_version, API_URL, CLIENT_ID))
    print("create a natural OWNER user")
    owner = NaturalUser(first_name="Alex", last_name="Smith", email="alex.smith@example.com",
                        birthday=datetime.date(1990, 9, 1), nationality="FR",
                        country_of_residence="FR", address=paris_address(), user_category="OWNER",
                        terms_and_conditions_accepted=True, tag="python sdk kyc owner")
    owner.save()
    check(owner.id.startswith("user_m_"), "user %s created" % owner.id)
    check(last_json()["KYCLevel"] == "LIGHT", "a new user is LIGHT")
    image = identity_document(owner)
    print("the page is kept as its digest: sha256 %s" % hashlib.sha256(image).hexdigest()[:16])
    refusals(owner, image)
    ubo_declaration()
    print("python_kyc: all checks passed (%d HTTP exchanges)" % len(EXCHANGES))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # every failure, including SDK errors, fails the run
        traceback.print_exc()
        print("python_kyc: FAILED", file=sys.stderr)
        sys.exit(1)
