"""Receipt checks (POST /v1/receipts/check): every row of the contract's table, over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import Counter

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from refbackend import DEMO_VENUE
from refbackend.keys import key_path_for, load_or_create
from refbackend.tokens import kid_for, sign_paycode, sign_receipt

RECEIPT_FIELDS = {
    "status",
    "tx",
    "amount_cents",
    "venue_name",
    "paid_at",
    "checked_at",
    "checked_by",
}


def _receipt_claims(tx: str = "tx_AAAAAAAAAAAAAAAA") -> dict:
    return {
        "tx": tx,
        "venue": DEMO_VENUE,
        "venue_name": "Hierontastudio Demo",
        "venue_address": "Esimerkkikatu 1, 00100 Helsinki",
        "amount_cents": 6500,
        "paid_at": 1_795_000_000,
    }


def test_first_check_is_200_checked_with_the_contract_fields(api, refbackend):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500, paid_at=1_795_000_000)
    resp = api.check(token)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == RECEIPT_FIELDS
    assert body["status"] == "checked"
    assert body["tx"] == tx
    assert body["amount_cents"] == 6500
    assert body["venue_name"] == "Hierontastudio Demo"
    assert body["paid_at"] == "2026-11-18T11:06:40Z"
    assert body["checked_at"].endswith("Z") and len(body["checked_at"]) == 20
    assert body["checked_by"] == "counter-1"


def test_second_check_is_409_already_checked_with_when_and_by_whom(api, refbackend):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    first = api.check(token, device="counter-1").json()
    resp = api.check(token, device="counter-2")
    assert resp.status_code == 409
    body = resp.json()
    assert body["status"] == "already_checked"
    assert body["message"]
    assert (body["tx"], body["checked_at"], body["checked_by"]) == (
        tx,
        first["checked_at"],
        "counter-1",
    )


def test_cancelled_payment_is_410(api, refbackend):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.cancel(tx).status_code == 200
    resp = api.check(token)
    assert resp.status_code == 410
    assert resp.json()["status"] == "cancelled"


def test_receipt_of_another_venue_is_403_with_its_name(api, refbackend):
    other = refbackend.create_venue("Toinen Studio", "Kauppakatu 5, Tampere")
    _tx, token = refbackend.mint_receipt(other["id"], 4000)
    resp = api.check(token)
    assert resp.status_code == 403
    assert resp.json()["status"] == "wrong_venue"
    assert resp.json()["venue_name"] == "Toinen Studio"


def test_body_venue_other_than_the_clients_is_403(api, refbackend):
    other = refbackend.create_venue("Toinen Studio", "Kauppakatu 5, Tampere")
    _tx, token = refbackend.mint_receipt(other["id"], 4000)
    resp = api.check(token, venue=other["id"])
    assert resp.status_code == 403
    assert resp.json()["status"] == "wrong_venue"


def _invalid_reason(api, token: str) -> str:
    resp = api.check(token)
    assert resp.status_code == 422, resp.text
    assert resp.json()["status"] == "invalid"
    assert resp.json()["message"]
    return str(resp.json()["reason"])


def test_tampered_signature_is_invalid(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    head, payload, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    assert _invalid_reason(api, f"{head}.{payload}.{flipped}") == "bad_signature"


def test_tampered_amount_is_invalid(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["amt"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _invalid_reason(api, f"{head}.{forged}.{sig}") == "bad_signature"


def test_unknown_key_alg_none_and_garbage_are_invalid(api, refbackend):
    stranger = Ed25519PrivateKey.generate()
    forged = sign_receipt(
        stranger, kid_for(stranger.public_key()), issuer=refbackend.issuer, **_receipt_claims()
    )
    assert _invalid_reason(api, forged) == "unknown_kid"
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"smartum-receipt+jwt"}')
    assert _invalid_reason(api, none_head.decode().rstrip("=") + ".e30.") == "bad_alg"
    assert _invalid_reason(api, "not-a-token") == "malformed"
    assert _invalid_reason(api, "eyJ" + "A" * 3000 + ".x.y") == "too_long"


def test_receipt_this_backend_never_issued_is_unknown_tx(api, refbackend):
    key = load_or_create(key_path_for(refbackend.db))
    token = sign_receipt(key.private, key.kid, issuer=refbackend.issuer, **_receipt_claims())
    assert _invalid_reason(api, token) == "unknown_tx"


def test_paycode_sent_as_receipt_is_invalid(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    assert _invalid_reason(api, paycode["token"]) == "not_receipt"
    key = load_or_create(key_path_for(refbackend.db))
    wrong_iss = sign_paycode(
        key.private,
        key.kid,
        issuer="someone-else",
        jti="pc_AAAAAAAAAAAAAAAA",
        code="123456789012",
        issued_at=1_795_000_000,
    )
    assert _invalid_reason(api, wrong_iss) == "bad_iss"


def test_offline_upload_is_checked_and_flagged_offline(api, refbackend):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    resp = api.check(token, offline=True)
    assert resp.status_code == 200
    (item,) = api.history().json()["items"]
    assert (item["tx"], item["offline"], item["conflict"]) == (tx, True, False)


def test_offline_upload_of_a_checked_receipt_records_a_conflict(api, refbackend):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token, device="counter-1").status_code == 200
    online_again = api.check(token, device="counter-1")
    assert online_again.status_code == 409
    assert api.history().json()["items"][0]["conflict"] is False  # an online 409 is no conflict
    resp = api.check(token, device="counter-2", offline=True)
    assert resp.status_code == 409
    assert resp.json()["status"] == "already_checked"
    (item,) = api.history().json()["items"]
    assert item["tx"] == tx
    assert item["conflict"] is True
    assert item["device"] == "counter-1"


def test_fifty_concurrent_checks_give_exactly_one_200(refbackend, demo_client, get_bearer):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    bearer = get_bearer(refbackend.url, *demo_client)
    body = {
        "token": token,
        "venue": DEMO_VENUE,
        "device": "counter-1",
        "scanned_at": "2026-11-24T09:15:02Z",
        "offline": False,
    }
    start = threading.Barrier(50)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def one() -> None:
        with requests.Session() as session:
            start.wait(timeout=10)
            resp = session.post(
                f"{refbackend.url}/v1/receipts/check",
                json=body,
                headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())},
                timeout=(5, 30),
            )
            with lock:
                results.append((resp.status_code, resp.json()["status"]))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert Counter(results) == {(200, "checked"): 1, (409, "already_checked"): 49}
