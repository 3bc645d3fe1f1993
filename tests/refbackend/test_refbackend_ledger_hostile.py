"""The ledger under hostile input: text that is not Unicode, reused codes, late offline reports."""

from __future__ import annotations

import uuid

import pytest
import requests

from refbackend import DEMO_VENUE

T = (2.0, 10.0)


def _cancel_raw(api, tx: str, body: bytes) -> requests.Response:
    headers = api.headers(str(uuid.uuid4())) | {"Content-Type": "application/json"}
    url = f"{api.url}/v1/transactions/{tx}/cancel"
    return api.session.post(url, data=body, headers=headers, timeout=T)


@pytest.mark.parametrize(
    "body",
    [
        b'{"reason": "asiakas peru\xe4"}',  # Latin-1 bytes: not UTF-8
        b'{"reason": "\xed\xa0\x80"}',  # an encoded surrogate: not UTF-8 either
        b'{"reason": "lone \\ud800 surrogate"}',  # valid JSON escape, not Unicode text
        b'{"reason": "x", "note": "\\udfff"}',  # in a field the endpoint does not even read
    ],
)
def test_a_cancel_reason_that_is_not_unicode_text_is_400_and_the_cancel_still_works(
    api, refbackend, body
):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token).status_code == 200
    resp = _cancel_raw(api, tx, body)
    assert resp.status_code == 400
    assert resp.json()["status"] == "bad_request"
    resp = _cancel_raw(api, tx, '{"reason": "asiakas peruutti ä"}'.encode())
    assert (resp.status_code, resp.json()["status"]) == (200, "cancelled")


def test_a_check_with_a_lone_surrogate_device_name_is_400(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    body = (
        f'{{"token":"{token}","venue":"{DEMO_VENUE}","device":"c\\ud83d",'
        '"scanned_at":"2026-11-24T09:15:02Z","offline":false}'
    ).encode()
    headers = api.headers(str(uuid.uuid4())) | {"Content-Type": "application/json"}
    resp = api.session.post(f"{api.url}/v1/receipts/check", data=body, headers=headers, timeout=T)
    assert (resp.status_code, resp.json()["status"]) == (400, "bad_request")
    assert api.check(token).status_code == 200  # nothing was recorded by the refused one


def test_offline_acceptance_reported_after_an_unknown_outcome_is_a_conflict(api, refbackend):
    """Contract: "Offline acceptance after an unknown outcome"."""
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token, device="counter-1").status_code == 200
    # counter-2's online check: the answer is lost after the backend committed it
    first_key = str(uuid.uuid4())
    refbackend.faults.drop_after_commit = 1
    with pytest.raises(requests.ConnectionError):
        api.check(token, device="counter-2", key=first_key)
    retry = api.check(token, device="counter-2", key=first_key)  # unchanged, offline: false
    assert (retry.status_code, retry.json()["status"]) == (409, "already_checked")
    assert retry.json()["checked_by"] == "counter-1"
    assert api.history().json()["items"][0]["conflict"] is False
    # meanwhile counter-2 had accepted it offline: it reports that under a new key
    report = api.check(token, device="counter-2", offline=True, key=str(uuid.uuid4()))
    assert (report.status_code, report.json()["status"]) == (409, "already_checked")
    (item,) = api.history().json()["items"]
    assert (item["tx"], item["conflict"], item["device"]) == (tx, True, "counter-1")
