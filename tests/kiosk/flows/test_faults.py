"""The fault matrix: whatever the backend, the network or the disk does, nothing is lost and
nothing is redeemed twice.

Each test drives a simulated counter (``make_sim``) against the reference backend,
injects one kind of fault, lets the kiosk recover, and then compares what the
backend really did (its database: transactions, paycodes and the stored answer of
every idempotency key) with the kiosk's journal.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.backend import bodies
from kiosk.backend.client import BackendClient
from kiosk.config import Secret
from kiosk.journal import Journal
from kiosk.views import Alarm
from refbackend import DEMO_VENUE

Sim = Any
Client = tuple[str, str]
ACCEPTED = ("checked", "checked_offline")


# --- what the backend really did -------------------------------------------------------------


def tx_state(sim: Sim, tx: str) -> str:
    (row,) = sim.backend_rows("SELECT state FROM transactions WHERE tx = ?", (tx,))
    return str(row["state"])


def answers(sim: Sim, client_id: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """Idempotency key -> (HTTP status, answer) for every POST the kiosk got processed."""
    rows = sim.backend_rows(
        "SELECT key, code, body FROM idempotency WHERE client = ?", (client_id,)
    )
    out = {}
    for r in rows:
        assert r["code"] is not None, f"request {r['key']} never finished at the backend"
        out[str(r["key"])] = (int(r["code"]), json.loads(bytes(r["body"])))
    return out


def assert_exactly_once(sim: Sim, client_id: str, accepted: list[str]) -> None:
    """Every accepted receipt is checked once; no check unknown to the journal; none pending."""
    sim.wait_synced()
    requests_ = {str(r["idem_key"]): r for r in sim.journal_rows("SELECT * FROM requests")}
    assert all(r["state"] != "pending" for r in requests_.values())
    got = answers(sim, client_id)
    assert set(got) <= set(requests_), "the backend processed a request the journal lacks"
    checked: dict[str, int] = {}
    for code, body in got.values():
        assert body.get("status") != "already_checked", f"second check of {body.get('tx')}"
        if code == 200 and body.get("status") == "checked":
            checked[body["tx"]] = checked.get(body["tx"], 0) + 1
    for tx in accepted:
        assert tx_state(sim, tx) == "checked", tx
        assert checked.get(tx) == 1, (tx, checked)
    outcomes = sim.journal_rows("SELECT * FROM outcomes WHERE kind = 'receipt' ORDER BY id")
    first: dict[str, str] = {}
    for o in outcomes:
        if o["tx"] is not None:
            first.setdefault(o["tx"], o["outcome"])
        assert o["synced"] == 1, dict(o)
    assert "already_checked" not in first.values(), first
    assert "conflict" not in {o["outcome"] for o in outcomes}


def warm_up(sim: Sim) -> str:
    """One online check: keys cached and a recent sync, so offline acceptance is allowed.

    Also waits for the sync worker's first fetch of the venue, so that a fault set
    afterwards hits the scan's request and not that fetch.
    """
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(token).word == "checked"
    sim.wait_venue_fetched()
    return tx


def slow(**backend: Any) -> dict[str, Any]:
    return {"backend": {"connect_timeout": 0.5, "read_timeout": 0.3, **backend}}


# --- receipts --------------------------------------------------------------------------------


def test_backend_down_accepts_offline_and_uploads_each_once(
    make_sim: Any, demo_client: Client
) -> None:
    sim = make_sim()
    warm_up(sim)
    sim.backend.pause()
    txs = []
    for cents in (2000, 3000, 1500):
        tx, token = sim.backend.mint_receipt(DEMO_VENUE, cents)
        assert sim.scan(token).word == "checked_offline"
        txs.append(tx)
    sim.advance(0.35)
    assert sim.scan(token).word == "already_checked"  # rescan while still offline: local answer
    sim.backend.resume()
    assert_exactly_once(sim, demo_client[0], txs)
    offline = sim.backend_rows("SELECT tx FROM transactions WHERE offline = 1")
    assert sorted(r["tx"] for r in offline) == sorted(txs)


def test_slow_backend_unknown_outcome_is_resent_never_doubled(
    make_sim: Any, demo_client: Client
) -> None:
    sim = make_sim(**slow())
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2500)
    sim.backend.faults.delay_s = 0.6  # every answer comes after the 0.3 s read timeout
    outcome = sim.scan(token)
    # No answer in time: accepted within the offline limits, the request stays pending.
    assert outcome.word == "checked_offline"
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert (req["state"], req["maybe_delivered"], req["offline"]) == ("pending", 1, 0)
    assert json.loads(req["body"])["offline"] is False  # maybe delivered: never rewritten
    sim.backend.faults.delay_s = 0.0
    assert_exactly_once(sim, demo_client[0], [tx])
    sim.advance(0.35)
    assert sim.scan(token).word == "already_checked"


def test_dropped_answers_after_commit_replay_the_first_answer(
    sim: Sim, demo_client: Client
) -> None:
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4200)
    sim.backend.faults.drop_after_commit = 1
    outcome = sim.scan(token)
    assert (outcome.word, outcome.tx) == ("checked", tx)
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert (req["attempts"], req["maybe_delivered"], req["status"]) == (1, 1, "checked")
    sim.advance(0.35)
    assert sim.scan(token).word == "already_checked"  # from the journal, no second request
    assert_exactly_once(sim, demo_client[0], [tx])


def test_repeated_server_errors_retry_then_sync_once(make_sim: Any, demo_client: Client) -> None:
    sim = make_sim()
    first, token = sim.backend.mint_receipt(DEMO_VENUE, 2000)
    sim.backend.faults.error_500 = 3
    assert sim.scan(token).word == "checked"
    second, token2 = sim.backend.mint_receipt(DEMO_VENUE, 2100)
    sim.backend.faults.error_500 = 1000  # longer than a scan may wait
    assert sim.scan(token2).word == "checked_offline"
    assert tx_state(sim, second) == "paid"
    sim.backend.faults.error_500 = 0
    assert_exactly_once(sim, demo_client[0], [first, second])


def test_rate_limit_waits_for_retry_after(sim: Sim, demo_client: Client) -> None:
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 1800)
    sim.backend.faults.rate_limit = 1
    started = time.monotonic()
    assert sim.scan(token).word == "checked"
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 honoured, not hammered
    assert_exactly_once(sim, demo_client[0], [tx])


def test_garbage_answers_never_become_an_accept(make_sim: Any, demo_client: Client) -> None:
    sim = make_sim(offline={"enabled": False})
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2200)
    sim.backend.faults.garbage = 1
    assert sim.scan(token).word == "checked"  # retried with the same key, then confirmed
    tx2, token2 = sim.backend.mint_receipt(DEMO_VENUE, 2300)
    sim.backend.faults.garbage = 1000
    refused = sim.scan(token2)
    assert (refused.word, refused.reason) == ("needs_network", "offline_disabled")
    assert tx_state(sim, tx2) == "paid"
    # The request may have arrived, so it stays pending and the sync worker learns the answer.
    sim.backend.faults.garbage = 0
    assert_exactly_once(sim, demo_client[0], [tx])
    assert tx_state(sim, tx2) == "checked"
    sim.advance(0.35)
    again = sim.scan(token2)  # the customer tries again: our own check, shown now
    assert (again.word, again.tx) == ("checked", tx2)
    assert_exactly_once(sim, demo_client[0], [tx, tx2])


def test_kiosk_stopped_with_requests_in_flight_resumes_them(
    make_sim: Any, demo_client: Client
) -> None:
    sim = make_sim(**slow())
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2700)
    sim.backend.faults.delay_s = 0.6
    sim.backend.faults.delaying.clear()
    sim.submit_scan(token)
    assert sim.backend.faults.delaying.wait(5.0)  # the check is at the backend now
    sim.stop()  # finishes the scan in hand (no answer in time), then stops
    assert sim.outcome().word == "checked_offline"
    with Journal.open(sim.cfg.journal.path) as journal:
        assert [r.tx for r in journal.open_requests()] == [tx]
    sim.backend.faults.delay_s = 0.0
    resumed = make_sim(**slow())  # the next start, on the same journal
    assert_exactly_once(resumed, demo_client[0], [tx])


def test_request_left_by_a_killed_kiosk_is_resent_unchanged(
    make_sim: Any, demo_client: Client
) -> None:
    """Killed after sending, before the answer was stored: the next run may not rewrite it."""
    first = make_sim()
    warm_up(first)
    first.stop()
    tx, token = first.backend.mint_receipt(DEMO_VENUE, 3100)
    body = bodies.receipt_check(
        token,
        venue=DEMO_VENUE,
        device="counter-1",
        scanned_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )
    with Journal.open(first.cfg.journal.path) as journal:
        request = journal.begin("receipt", body, tx=tx, amount_cents=3100)
    with BackendClient(
        first.backend.url,
        client_id=demo_client[0],
        client_secret=Secret(demo_client[1]),
        session=requests.Session(),
    ) as client:
        assert client.check_receipt(request.key, body).status == "checked"  # then: kill -9
    first.backend.pause()
    sim = make_sim()
    assert sim.scan(token).word == "checked_offline"  # the customer scans again, offline
    sim.backend.resume()
    assert_exactly_once(sim, demo_client[0], [tx])


# --- disk full -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs for the journal, so the disk really fills up (needs CAP_SYS_ADMIN)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (root needed): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)


def fill(directory: Path) -> Path:
    """Fill the file system holding *directory* to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def test_disk_full_refuses_new_scans_and_keeps_every_entry(
    make_sim: Any, demo_client: Client, small_disk: Path
) -> None:
    sim = make_sim(journal={"path": str(small_disk / "journal.db"), "min_free_mb": 0})
    kept = warm_up(sim)
    # An empty write-ahead log, so that the full disk meets the scan's writes whatever
    # free frames the journal's creation and the warm-up left behind in it.
    with Journal.open(sim.cfg.journal.path) as journal:
        assert journal.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    filler = fill(small_disk)

    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2400)
    sim.submit_scan(token)
    assert sim.wait_view(Alarm).kind == "disk_full"
    # Refused before anything was sent, or (when the request still fitted into the
    # write-ahead log's free frames) sent, with only its answer left unstored.
    sent_first = tx_state(sim, tx) == "checked"
    assert tx_state(sim, tx) in {"paid", "checked"}

    # The disk fills while a check is at the backend: its answer cannot be stored.
    filler.unlink()
    sim.backend.faults.delay_s = 0.3
    sim.backend.faults.delaying.clear()
    late, late_token = sim.backend.mint_receipt(DEMO_VENUE, 2600)
    sim.submit_scan(late_token)
    assert sim.backend.faults.delaying.wait(5.0)
    filler = fill(small_disk)
    assert sim.wait_view(Alarm).kind == "disk_full"
    assert tx_state(sim, late) == "checked"  # done there, not noted here

    filler.unlink()  # space is back
    sim.backend.faults.delay_s = 0.0
    with Journal.open(sim.cfg.journal.path) as journal:
        assert kept in {o.tx for o in journal.outcomes()}  # what was stored is still there
        resend = [tx, late] if sent_first else [late]
        assert [r.tx for r in journal.open_requests()] == resend  # and resent from there
    sim.advance(0.35)
    assert sim.scan(token).word == "checked"
    again = sim.scan(late_token)
    assert (again.word, again.tx) == ("checked", late)  # our own check, not already_checked
    assert_exactly_once(sim, demo_client[0], [kept, tx, late])


# --- charges ---------------------------------------------------------------------------------


def paycode(sim: Sim, jti: str) -> Any:
    (row,) = sim.backend_rows("SELECT * FROM paycodes WHERE jti = ?", (jti,))
    return row


def charges_of(sim: Sim, jti: str) -> list[Any]:
    return sim.backend_rows("SELECT * FROM transactions WHERE paycode = ?", (jti,))


def test_charge_dropped_after_commit_is_not_charged_twice(
    make_sim: Any, demo_client: Client
) -> None:
    sim = make_sim(buttons=False)
    code = sim.backend.mint_paycode(20000)
    sim.backend.faults.drop_after_commit = 1
    outcome = sim.scan(code["token"])
    assert (outcome.word, outcome.amount_cents) == ("charged", 6500)  # the replayed answer
    assert paycode(sim, code["jti"])["balance_cents"] == 13500
    (charge,) = charges_of(sim, code["jti"])
    assert outcome.tx == charge["tx"]
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE kind = 'charge'")
    assert (req["state"], req["status"], req["attempts"]) == ("done", "charged", 1)
    got = answers(sim, demo_client[0])
    assert [c for c, _ in got.values()] == [201]


def test_charge_with_unknown_outcome_stays_pending_until_sync(
    make_sim: Any, demo_client: Client
) -> None:
    sim = make_sim(buttons=False, **slow())
    code = sim.backend.mint_paycode(20000)
    sim.scan(sim.backend.mint_paycode(100)["code"])  # learn the menu (insufficient funds)
    sim.backend.faults.delay_s = 0.6
    outcome = sim.scan(code["token"])
    assert (outcome.word, outcome.reason) == ("needs_network", "charge_pending")
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE ref = ?", (code["jti"],))
    assert (req["state"], req["maybe_delivered"]) == ("pending", 1)
    sim.backend.faults.delay_s = 0.0
    sim.wait_synced()
    (charge,) = charges_of(sim, code["jti"])
    assert paycode(sim, code["jti"])["balance_cents"] == 13500
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE ref = ?", (code["jti"],))
    assert (req["state"], req["status"], req["tx"]) == ("done", "charged", charge["tx"])
    (row,) = sim.journal_rows("SELECT * FROM outcomes WHERE request_id = ?", (req["id"],))
    assert (row["outcome"], row["synced"], row["tx"]) == ("charged", 1, charge["tx"])
    statuses = sorted(c for c, _ in answers(sim, demo_client[0]).values())
    assert statuses == [201, 402]


def test_charge_left_by_a_killed_kiosk_is_never_given_up(
    make_sim: Any, demo_client: Client
) -> None:
    """Killed after sending a charge: with the backend away, the rescan may not void it."""
    first = make_sim(buttons=False)
    first.scan(first.backend.mint_paycode(100)["code"])  # menu cached (insufficient funds)
    first.stop()
    code = first.backend.mint_paycode(20000)
    body = bodies.charge(
        code["token"], venue=DEMO_VENUE, device="counter-1", service="classic-60", amount_cents=6500
    )
    with Journal.open(first.cfg.journal.path) as journal:
        request = journal.begin("charge", body, ref=code["jti"], amount_cents=6500)
    with BackendClient(
        first.backend.url,
        client_id=demo_client[0],
        client_secret=Secret(demo_client[1]),
        session=requests.Session(),
    ) as client:
        assert client.charge(request.key, body).status == "charged"  # then: kill -9
    first.backend.pause()
    sim = make_sim(buttons=False)
    outcome = sim.scan(code["token"])  # the customer scans again; the backend is away
    assert (outcome.word, outcome.reason) == ("needs_network", "charge_pending")
    sim.backend.resume()
    sim.wait_synced()
    (charge,) = charges_of(sim, code["jti"])
    assert paycode(sim, code["jti"])["balance_cents"] == 13500
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE ref = ?", (code["jti"],))
    assert (req["state"], req["status"], req["tx"]) == ("done", "charged", charge["tx"])
