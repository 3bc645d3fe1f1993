"""Cancel (same Helsinki calendar day, injected clock) and history pagination, over HTTP."""

from __future__ import annotations

from datetime import datetime

from refbackend import DEMO_VENUE

ITEM_FIELDS = {"tx", "kind", "amount_cents", "status", "at", "device", "offline", "conflict"}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _status(resp) -> tuple[int, str]:
    return resp.status_code, resp.json()["status"]


def test_cancel_later_the_same_day_is_200(clocked):
    api, clock = clocked
    tx, token = api.backend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token).status_code == 200
    clock.now = _ts("2026-11-24T23:59:00+02:00")
    api.token = api.fresh_token()  # the clock jumped past the access token's hour
    resp = api.cancel(tx)
    assert _status(resp) == (200, "cancelled")
    assert resp.json()["tx"] == tx
    assert resp.json()["cancelled_at"] == "2026-11-24T21:59:00Z"


def test_cancel_the_next_helsinki_day_is_not_same_day(clocked):
    api, clock = clocked
    clock.now = _ts("2026-11-24T23:30:00+02:00")  # 21:30 UTC
    api.token = api.fresh_token()
    tx, token = api.backend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token).status_code == 200
    clock.now = _ts("2026-11-25T00:30:00+02:00")  # still 24 Nov in UTC, not in Helsinki
    api.token = api.fresh_token()
    resp = api.cancel(tx)
    assert _status(resp) == (409, "not_cancellable")
    assert resp.json()["reason"] == "not_same_day"


def test_same_helsinki_day_across_utc_midnight_is_cancellable(clocked):
    api, clock = clocked
    clock.now = _ts("2026-11-24T00:30:00+02:00")  # 23 Nov in UTC
    api.token = api.fresh_token()
    paycode = api.backend.mint_paycode(10000, ttl_s=3600)
    tx = api.charge(paycode["code"]).json()["tx"]
    clock.now = _ts("2026-11-24T23:00:00+02:00")
    api.token = api.fresh_token()
    assert _status(api.cancel(tx)) == (200, "cancelled")


def test_receipt_paid_yesterday_and_checked_today_is_cancellable_today(clocked):
    api, clock = clocked
    tx, token = api.backend.mint_receipt(DEMO_VENUE, 6500, paid_at=clock.now - 86400)
    assert api.check(token).status_code == 200
    assert _status(api.cancel(tx)) == (200, "cancelled")


def test_second_cancel_is_already_cancelled_and_unknown_is_404(api, refbackend):
    tx, _token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.cancel(tx).status_code == 200
    resp = api.cancel(tx)
    assert _status(resp) == (409, "not_cancellable")
    assert resp.json()["reason"] == "already_cancelled"
    assert _status(api.cancel("tx_0000000000000000")) == (404, "not_found")
    assert _status(api.cancel("nonsense")) == (404, "not_found")
    other = refbackend.create_venue("Toinen Studio", "Kauppakatu 5, Tampere")
    foreign, _ = refbackend.mint_receipt(other["id"], 4000)
    assert _status(api.cancel(foreign)) == (404, "not_found")


def test_cancel_needs_a_reason(api, refbackend):
    tx, _token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    resp = api.post(f"/v1/transactions/{tx}/cancel", {})
    assert _status(resp) == (400, "bad_request")


def _fill(api, clock) -> list[str]:
    """Seven venue transactions a minute apart (plus one unchecked receipt); newest first."""
    txs = []
    for i in range(7):
        clock.advance(60)
        if i % 2:
            txs.append(api.charge(api.backend.mint_paycode(10000)["code"]).json()["tx"])
        else:
            tx, token = api.backend.mint_receipt(DEMO_VENUE, 1000 + i, paid_at=clock.now)
            assert api.check(token, offline=i == 4).status_code == 200
            txs.append(tx)
    api.backend.mint_receipt(DEMO_VENUE, 999)  # paid, never checked: not the venue's event yet
    return txs[::-1]


def test_history_pages_newest_first_with_the_contract_fields(clocked):
    api, clock = clocked
    expected = _fill(api, clock)
    assert api.cancel(expected[3]).status_code == 200
    seen, pages, cursor = [], 0, None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        resp = api.history(**params)
        assert resp.status_code == 200
        body = resp.json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= 3
        seen += body["items"]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert [item["tx"] for item in seen] == expected
    assert all(set(item) == ITEM_FIELDS for item in seen)
    by_tx = {item["tx"]: item for item in seen}
    assert by_tx[expected[3]]["status"] == "cancelled"
    assert by_tx[expected[0]] == {
        "tx": expected[0],
        "kind": "receipt",
        "amount_cents": 1006,
        "status": "checked",
        "at": "2026-11-24T08:07:00Z",
        "device": "counter-1",
        "offline": False,
        "conflict": False,
    }
    assert by_tx[expected[1]]["kind"] == "charge" and by_tx[expected[1]]["status"] == "charged"
    assert by_tx[expected[2]]["offline"] is True


def test_history_since_keeps_only_newer_items(clocked):
    api, clock = clocked
    expected = _fill(api, clock)
    items = api.history(since="2026-11-24T08:05:00Z").json()["items"]
    assert [i["tx"] for i in items] == expected[:3]
    assert api.history(since="2026-11-24T10:05:00+02:00").json()["items"] == items


def test_history_parameters_out_of_contract_are_400(api):
    for params in [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"limit": -1},
        {"cursor": "not-ours"},
        {"cursor": "WzEsMl0x"},
        {"since": "yesterday"},
        {"since": "2026-13-40T00:00:00Z"},
    ]:
        resp = api.history(**params)
        assert _status(resp) == (400, "bad_request"), params
        assert resp.json()["message"]
    assert api.history(limit=500).status_code == 200
    assert api.history(limit=1).status_code == 200


def test_history_of_another_venue_is_403(api, refbackend):
    other = refbackend.create_venue("Toinen Studio", "Kauppakatu 5, Tampere")
    assert _status(api.get(f"/v1/venues/{other['id']}/transactions")) == (403, "wrong_venue")
