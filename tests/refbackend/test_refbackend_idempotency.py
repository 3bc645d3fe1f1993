"""Idempotency keys over HTTP: replay, mismatch, in progress, dropped answers, 24 h."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from refbackend import DEMO_VENUE


def test_same_key_same_body_replays_the_first_answer(api, refbackend):
    paycode = refbackend.mint_paycode(20000)
    key = str(uuid.uuid4())
    first = api.charge(paycode["code"], key=key)
    again = api.charge(paycode["code"], key=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert api.charge(paycode["code"]).json()["status"] == "paycode_used"  # charged only once
    assert len(api.history().json()["items"]) == 1


def test_error_answers_are_replayed_too(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token).status_code == 200
    key = str(uuid.uuid4())
    first = api.check(token, key=key)
    assert first.status_code == 409
    assert api.check(token, key=key).content == first.content


def test_key_order_in_the_body_does_not_matter(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    key = str(uuid.uuid4())
    body = {
        "token": token,
        "venue": DEMO_VENUE,
        "device": "c",
        "scanned_at": "2026-11-24T09:15:02Z",
        "offline": False,
    }
    first = api.post("/v1/receipts/check", body, key)
    reordered = dict(reversed(list(body.items())))
    assert api.post("/v1/receipts/check", reordered, key).content == first.content


def test_same_key_other_body_is_idempotency_mismatch(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    key = str(uuid.uuid4())
    assert api.check(token, key=key, device="counter-1").status_code == 200
    resp = api.check(token, key=key, device="counter-2")
    assert resp.status_code == 422
    assert resp.json()["status"] == "idempotency_mismatch"
    other_endpoint = api.post("/v1/transactions/tx_AAAAAAAAAAAAAAAA/cancel", {"reason": "x"}, key)
    assert other_endpoint.json()["status"] == "idempotency_mismatch"


def test_same_key_while_the_first_runs_is_in_progress(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    key = str(uuid.uuid4())
    first: list[requests.Response] = []
    refbackend.faults.delay_s = 0.5
    worker = threading.Thread(target=lambda: first.append(api.charge(paycode["code"], key=key)))
    with requests.Session() as other:
        worker.start()
        assert refbackend.faults.delaying.wait(5)
        refbackend.faults.delay_s = 0.0
        resp = other.post(
            f"{api.url}/v1/charges",
            json={
                "paycode": paycode["code"],
                "venue": DEMO_VENUE,
                "device": "counter-1",
                "service": "classic-60",
                "amount_cents": 6500,
            },
            headers=api.headers(key),
            timeout=(2, 10),
        )
    assert resp.status_code == 409
    assert resp.json()["status"] == "in_progress"
    assert int(resp.headers["Retry-After"]) >= 1
    worker.join(10)
    assert first[0].status_code == 201
    assert api.charge(paycode["code"], key=key).content == first[0].content


def test_answer_dropped_after_commit_is_replayed_on_retry(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    key = str(uuid.uuid4())
    refbackend.faults.drop_after_commit = 1
    with pytest.raises(requests.ConnectionError):
        api.charge(paycode["code"], key=key)
    retry = api.charge(paycode["code"], key=key)
    assert retry.status_code == 201
    (item,) = api.history().json()["items"]
    assert item["tx"] == retry.json()["tx"]


def test_replay_still_works_after_24_hours(clocked):
    api, clock = clocked
    _tx, token = api.backend.mint_receipt(DEMO_VENUE, 6500)
    key = str(uuid.uuid4())
    first = api.check(token, key=key)
    clock.advance(25 * 3600)
    api.token = api.fresh_token()
    again = api.check(token, key=key)
    assert again.status_code == 200
    assert again.content == first.content


def test_keys_belong_to_one_client(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    key = str(uuid.uuid4())
    assert api.check(token, key=key).status_code == 200
    other = type(api)(refbackend, refbackend.create_client(DEMO_VENUE))
    assert other.check(token, key=key, device="counter-2").status_code == 409


@pytest.mark.parametrize("key", [None, "", "abc", "1234", "{" + str(uuid.UUID(int=1)) + "}"])
def test_missing_or_non_uuid_key_is_400(api, key):
    headers = api.headers()
    if key is not None:
        headers["Idempotency-Key"] = key
    resp = api.session.post(f"{api.url}/v1/charges", json={}, headers=headers, timeout=(2, 10))
    assert resp.status_code == 400
    assert resp.json()["status"] == "bad_request"
    assert "Idempotency-Key" in resp.json()["message"]
