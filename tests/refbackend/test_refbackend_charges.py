"""Paycode charges (POST /v1/charges): every row of the contract's table, over HTTP."""

from __future__ import annotations

from refbackend import DEMO_VENUE

CHARGE_FIELDS = {"status", "tx", "amount_cents", "charged_at", "service"}


def _status(resp) -> tuple[int, str]:
    return resp.status_code, resp.json()["status"]


def test_charge_by_jws_is_201_charged(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    resp = api.charge(paycode["token"], "classic-60", 6500)
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == CHARGE_FIELDS
    assert body["status"] == "charged"
    assert body["tx"].startswith("tx_") and len(body["tx"]) == 19
    assert (body["amount_cents"], body["service"]) == (6500, "classic-60")
    assert body["charged_at"].endswith("Z")


def test_charge_by_twelve_digits_is_201(api, refbackend):
    paycode = refbackend.mint_paycode(6000)
    assert len(paycode["code"]) == 12 and paycode["code"].isdigit()
    assert _status(api.charge(paycode["code"], "sports-45", 5500)) == (201, "charged")


def test_insufficient_balance_is_402_with_the_balance(api, refbackend):
    paycode = refbackend.mint_paycode(5000)
    resp = api.charge(paycode["token"], "classic-60", 6500)
    assert _status(resp) == (402, "insufficient_funds")
    assert resp.json()["balance_cents"] == 5000
    # nothing was taken: the same code still pays for something it can afford
    assert _status(api.charge(paycode["code"], "sports-45", 5500)) == (402, "insufficient_funds")


def test_second_charge_of_a_paycode_is_409_used(api, refbackend):
    paycode = refbackend.mint_paycode(20000)
    assert api.charge(paycode["token"]).status_code == 201
    assert _status(api.charge(paycode["token"])) == (409, "paycode_used")
    assert _status(api.charge(paycode["code"])) == (409, "paycode_used")


def test_expired_paycode_is_410_by_the_backend_clock(clocked):
    api, clock = clocked
    paycode = api.backend.mint_paycode(10000, ttl_s=300)
    clock.advance(301)
    assert _status(api.charge(paycode["token"])) == (410, "paycode_expired")
    assert _status(api.charge(paycode["code"])) == (410, "paycode_expired")


def test_paycode_at_its_expiry_second_still_charges(clocked):
    api, clock = clocked
    paycode = api.backend.mint_paycode(10000, ttl_s=300)
    clock.advance(300)
    assert api.charge(paycode["code"]).status_code == 201


def test_hot_stone_is_not_eligible(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    resp = api.charge(paycode["token"], "hotstone-60", 7500)
    assert _status(resp) == (422, "not_eligible")
    assert resp.json()["message"]


def test_exercise_benefit_does_not_pay_for_massage(api, refbackend):
    paycode = refbackend.mint_paycode(10000, ben="exercise")
    assert _status(api.charge(paycode["token"], "classic-60", 6500)) == (422, "not_eligible")


def _invalid(resp) -> str:
    assert _status(resp) == (422, "invalid"), resp.text
    return str(resp.json()["reason"])


def test_unknown_service_wrong_amount_and_bad_codes_are_invalid(api, refbackend):
    paycode = refbackend.mint_paycode(10000)
    assert _invalid(api.charge(paycode["token"], "thai-90", 6500)) == "unknown_service"
    assert _invalid(api.charge(paycode["token"], "classic-60", 6400)) == "amount_mismatch"
    assert _invalid(api.charge(paycode["token"], "classic-60", 10**30)) == "amount_mismatch"
    unknown = "000000000000" if paycode["code"] != "000000000000" else "1" * 12
    assert _invalid(api.charge(unknown)) == "unknown_code"
    assert _invalid(api.charge("12345")) == "malformed"
    head, payload, sig = paycode["token"].split(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert _invalid(api.charge(f"{head}.{payload}.{flipped}")) == "bad_signature"
    _tx, receipt = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert _invalid(api.charge(receipt)) == "not_paycode"
    # none of these used the code up
    assert api.charge(paycode["code"]).status_code == 201


def test_a_cancelled_charge_leaves_its_one_time_code_used(api, refbackend):
    paycode = refbackend.mint_paycode(7000)
    tx = api.charge(paycode["code"], "classic-60", 6500).json()["tx"]
    assert _status(api.charge(paycode["code"], "classic-60", 6500)) == (409, "paycode_used")
    assert _status(api.cancel(tx)) == (200, "cancelled")
    assert _status(api.charge(paycode["code"], "classic-60", 6500)) == (409, "paycode_used")
    assert _status(api.charge(paycode["token"], "sports-45", 5500)) == (409, "paycode_used")


def test_charge_for_another_venue_is_403(api, refbackend):
    other = refbackend.create_venue("Toinen Studio", "Kauppakatu 5, Tampere")
    paycode = refbackend.mint_paycode(10000)
    body = {
        "paycode": paycode["code"],
        "venue": other["id"],
        "device": "counter-1",
        "service": "classic-60",
        "amount_cents": 6500,
    }
    assert _status(api.post("/v1/charges", body)) == (403, "wrong_venue")
