"""Receipts end to end: verify, check exactly once, answer rescans locally, go offline."""

from __future__ import annotations

import json
from typing import Any as Sim

import requests

from kiosk.journal import Journal
from kiosk.views import Alarm, Result
from refbackend import DEMO_VENUE, ReferenceBackend


def backend_history(backend: ReferenceBackend, client: tuple[str, str]) -> list[dict]:
    token = requests.post(
        f"{backend.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
        timeout=5,
    ).json()["access_token"]
    resp = requests.get(
        f"{backend.url}/v1/venues/{DEMO_VENUE}/transactions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    return resp.json()["items"]


def test_receipt_checked_then_rescan_answered_from_journal(sim: Sim) -> None:
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    first = sim.scan(token)
    assert (first.word, first.tx, first.amount_cents) == ("checked", tx, 6500), first
    assert first.venue_name == "Hierontastudio Demo"
    assert isinstance(sim.counter.screen.last_view, Result)
    sim.backend.pause()  # a rescan needs no network
    sim.advance(0.35)  # past the repeat window
    again = sim.scan(token)
    assert again.word == "already_checked"
    assert again.checked_by == "counter-1" and again.checked_at is not None


def test_repeat_within_window_is_ignored_silently(make_sim) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim(scanner={"repeat_window_scanner": 30.0})
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    sim.submit_scan(token)
    sim.submit_scan(token)
    assert sim.outcome().word == "checked"
    import queue

    import pytest

    with pytest.raises(queue.Empty):
        sim.outcome(timeout=0.7)


def test_wrong_venue_tampered_and_garbage(sim: Sim) -> None:
    other = sim.backend.create_venue("Toinen Studio", "Muualla 2")
    _, foreign = sim.backend.mint_receipt(other["id"], 5000)
    wrong = sim.scan(foreign)
    assert (wrong.word, wrong.venue_name) == ("wrong_venue", "Toinen Studio")
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 5000)
    head, payload, sig = token.split(".")
    tampered = sim.scan(f"{head}.{payload[:-2]}AA.{sig}")
    assert (tampered.word, tampered.reason) in {
        ("invalid", "bad_signature"),
        ("invalid", "malformed"),
    }
    junk = sim.scan("https://example.com/menu")
    assert (junk.word, junk.reason) == ("invalid", "not_smartum")


def test_response_dropped_after_commit_is_not_a_false_already_checked(sim: Sim) -> None:
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4200)
    sim.backend.faults.drop_after_commit = 1
    outcome = sim.scan(token)
    # The retry with the same key replays the first answer: checked, not already_checked.
    assert (outcome.word, outcome.tx) == ("checked", tx)


def test_server_errors_and_rate_limit_are_retried_with_the_same_key(sim: Sim) -> None:
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 4200)
    sim.backend.faults.error_500 = 2
    assert sim.scan(token).word == "checked"
    _, token2 = sim.backend.mint_receipt(DEMO_VENUE, 4300)
    sim.backend.faults.rate_limit = 1
    assert sim.scan(token2).word == "checked"


def test_rate_limited_request_is_known_unprocessed_and_retried(sim: Sim) -> None:
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4400)
    sim.backend.faults.rate_limit = 10_000  # every /v1 request answers 429 (Retry-After: 1)
    assert sim.scan(token).word == "checked_offline"
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    # A 429 says the backend processed nothing: not an unknown outcome, so the request
    # may still become an offline acceptance (an unknown outcome would freeze its body).
    assert req["state"] == "pending" and req["attempts"] >= 1
    assert req["offline"] == 1 and json.loads(req["body"])["offline"] is True
    assert "429" in req["last_error"]
    sim.backend.faults.rate_limit = 0
    sim.wait_synced()
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert req["state"] != "pending"


def test_offline_acceptance_upload_and_history(sim: Sim, demo_client) -> None:  # type: ignore[no-untyped-def]
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"  # a successful sync: offline age starts here
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 5500)
    sim.backend.pause()
    outcome = sim.scan(token)
    assert outcome.word == "checked_offline"
    sim.backend.resume()
    sim.wait_synced()
    items = {i["tx"]: i for i in backend_history(sim.backend, demo_client)}
    assert items[tx]["status"] == "checked" and items[tx]["offline"] is True
    with Journal.open(sim.cfg.journal.path) as journal:
        rows = [o for o in journal.outcomes() if o.tx == tx]
        assert [(o.outcome, o.synced) for o in rows] == [("checked_offline", True)]


def test_offline_conflict_is_recorded_not_dropped(sim: Sim, demo_client) -> None:  # type: ignore[no-untyped-def]
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 3000)
    sim.backend.pause()
    assert sim.scan(token).word == "checked_offline"
    # Meanwhile another counter checks the same receipt online.
    from kiosk.backend.client import BackendClient
    from kiosk.config import Secret

    other_id, other_secret = sim.backend.create_client(DEMO_VENUE)
    sim.counter.sync.stop()  # hold the upload until the other counter has checked
    sim.backend.resume()
    with BackendClient(
        sim.backend.url,
        client_id=other_id,
        client_secret=Secret(other_secret),
        session=requests.Session(),
    ) as other:
        body = {
            "token": token,
            "venue": DEMO_VENUE,
            "device": "counter-2",
            "scanned_at": "2026-11-26T10:00:00Z",
            "offline": False,
        }
        assert other.check_receipt("6f1c1c6e-8b7e-4d52-9d0e-2f4f3f1f0a11", body).status == (
            "checked"
        )
    from kiosk.flows.sync_worker import SyncWorker

    worker = SyncWorker(sim.counter.open_context, interval=0.2)
    worker.start()
    try:
        sim.wait_synced()
    finally:
        worker.stop()
    with Journal.open(sim.cfg.journal.path) as journal:
        assert [c.tx for c in journal.conflicts()] == [tx]
    items = {i["tx"]: i for i in backend_history(sim.backend, demo_client)}
    assert items[tx]["conflict"] is True


def test_offline_limits_refuse_with_reason(make_sim) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim(offline={"max_amount_cents": 5000, "max_count": 1})
    # Never synced with the backend yet: no offline acceptance at all.
    _, fresh = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    sim.backend.pause()
    first = sim.scan(fresh)
    assert (first.word, first.reason) == ("needs_network", "stale_sync")
    sim.backend.resume()
    assert sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    sim.backend.pause()
    big = sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 6000)[1])
    assert (big.word, big.reason) == ("needs_network", "limit_amount")
    assert sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 2000)[1]).word == "checked_offline"
    count = sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 2000)[1])
    assert (count.word, count.reason) == ("needs_network", "limit_count")
    # A refused receipt was never sent: once online it is checked normally.
    sim.backend.resume()
    sim.advance(0.35)  # past the repeat window of the first read of this receipt
    assert sim.scan(fresh).word == "checked"


def test_disk_below_minimum_refuses_scans_and_keeps_journal(make_sim) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim(journal={"min_free_mb": 100_000})
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    sim.submit_scan(token)
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "disk_full"
    with Journal.open(sim.cfg.journal.path) as journal:
        assert journal.pending_count() == 0
