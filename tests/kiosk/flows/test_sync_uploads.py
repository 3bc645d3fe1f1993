"""Uploads against the reference backend: none stuck behind another, order kept where it
matters, quarantine, conflicts reported, the attempt mark, and how many commits it all takes.

Each test drives the flows on one thread with its own FlowContext (as ``kiosk sync`` and
the engine do) and reads the backend's database to see what really happened there.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.backend import bodies
from kiosk.clock import BootTime
from kiosk.config import Config, parse_config
from kiosk.errors import JournalError
from kiosk.figures import read_figures
from kiosk.flows.context import FlowContext, default_client, open_context
from kiosk.flows.receipt import check_receipt
from kiosk.flows.sync import sync_once
from kiosk.flows.upload_pool import UploadPool
from kiosk.journal import Journal
from kiosk.tokens import Receipt
from kiosk.vocabulary import RequestKind
from refbackend import DEMO_VENUE, ReferenceBackend

Client = tuple[str, str]


def config(tmp_path: Path, backend: ReferenceBackend, client: Client, **journal: Any) -> Config:
    secret = tmp_path / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    return parse_config(
        {
            "device": {"id": "counter-1", "venue": DEMO_VENUE},
            "backend": {
                "url": backend.url,
                "client_id": client[0],
                "client_secret_file": str(secret),
                "issuer": backend.issuer,
                "connect_timeout": 0.5,
                "read_timeout": 1.0,
            },
            "display": {"driver": "none"},
            "journal": {"path": str(tmp_path / "journal.db"), "min_free_mb": 0, **journal},
        }
    )


@pytest.fixture
def make_ctx(tmp_path: Path, refbackend: ReferenceBackend, demo_client: Client) -> Iterator[Any]:
    made: list[FlowContext] = []

    def make(**journal: Any) -> FlowContext:
        cfg = config(tmp_path, refbackend, demo_client, **journal)
        ctx = open_context(cfg, client_factory=default_client, clock_synced=lambda: True)
        ctx.sleep = lambda s: None  # in-scan retries without waiting
        ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
        ctx.mark_synced()  # a recent sync: offline acceptance is allowed
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.journal.close()
        ctx.client.close()


def offline_check(ctx: FlowContext, backend: ReferenceBackend, cents: int = 1000) -> str:
    """Journal a receipt accepted offline (as the receipt flow does), its outcome waiting."""
    tx, token = backend.mint_receipt(DEMO_VENUE, cents)
    body = bodies.receipt_check(
        token, venue=DEMO_VENUE, device="counter-1", scanned_at=datetime.now(UTC), offline=True
    )
    request = ctx.journal.begin(
        RequestKind.RECEIPT, body, tx=tx, amount_cents=cents, offline=True, now=ctx.clock() - 60
    )
    ctx.journal.record(
        RequestKind.RECEIPT, "checked_offline", tx=tx, amount_cents=cents,
        request_id=request.id, synced=False, shown_accepted=True,
    )  # fmt: skip
    return tx


def refused_request(ctx: FlowContext) -> int:
    """A charge the backend refuses as malformed on every try (400: no amount)."""
    text = json.dumps({"paycode": "123456789012", "venue": DEMO_VENUE, "device": "counter-1"})
    request = ctx.journal.begin(RequestKind.CHARGE, text, ref="123456789012", now=ctx.clock() - 60)
    return request.id


def backend_rows(backend: ReferenceBackend, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(f"file:{backend.db}?mode=ro", uri=True, timeout=5.0)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def history(backend: ReferenceBackend, client: Client) -> dict[str, dict[str, Any]]:
    token = requests.post(
        f"{backend.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=client,
        timeout=5,
    ).json()["access_token"]  # fmt: skip
    resp = requests.get(
        f"{backend.url}/v1/venues/{DEMO_VENUE}/transactions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    return {i["tx"]: i for i in resp.json()["items"]}


def commits(journal: Journal) -> list[str]:
    """Every COMMIT the journal's connection runs from now on (each one a flush)."""
    seen: list[str] = []
    journal.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


def scan(ctx: FlowContext, token: str) -> Any:
    scanned = ctx.classify(token)
    assert isinstance(scanned, Receipt), scanned
    return check_receipt(ctx, scanned)


# --- item: one undeliverable request no longer stops every upload ----------------------------


def test_a_refused_request_is_backed_off_and_the_uploads_behind_it_go_on(
    make_ctx: Any, refbackend: ReferenceBackend, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = make_ctx(quarantine_after=3, quarantine_retry=3600.0)
    frozen, frozen_boot = ctx.clock(), BootTime("boot-1", 100.0)
    ctx.clock = lambda: frozen  # a busy machine must not outlast the 0.2 s backoff
    ctx.boot = lambda: frozen_boot
    bad = refused_request(ctx)
    behind = [offline_check(ctx, refbackend) for _ in range(3)]

    report = sync_once(ctx)
    assert (report.uploaded, report.failed, report.remaining) == (3, 1, 1)
    for tx in behind:
        (row,) = backend_rows(refbackend, "SELECT state FROM transactions WHERE tx = ?", (tx,))
        assert row["state"] == "checked"
    held = ctx.journal.request(bad)
    assert (held.state, held.failures) == ("pending", 1)
    assert held.next_try_at > ctx.clock()  # backed off on its own
    assert sync_once(ctx).failed == 0  # not due yet: left alone

    caplog.set_level(logging.WARNING, logger="kiosk.sync")
    for _ in range(2):
        sync_once(ctx, everything=True)
    held = ctx.journal.request(bad)
    assert (held.state, held.failures) == ("quarantined", 3)
    assert held.next_try_at >= ctx.clock() + 3000  # retried hourly from now on
    assert read_figures(ctx.journal).quarantined == 1
    assert sync_once(ctx).remaining == 1  # kept, counted as left
    (line,) = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert f"request {bad}" in line and "malformed" in line


def test_a_backend_failing_as_a_whole_quarantines_nothing(
    make_ctx: Any, refbackend: ReferenceBackend
) -> None:
    ctx = make_ctx(quarantine_after=1)
    waiting = [offline_check(ctx, refbackend) for _ in range(4)]
    refbackend.faults.error_500 = 1000
    report = sync_once(ctx, everything=True)
    assert report.error is not None and report.uploaded == 0
    assert report.failed == 3  # stopped after three windows without an answer
    assert ctx.journal.quarantined_count() == 0
    refbackend.faults.clear()
    assert sync_once(ctx, everything=True).uploaded == len(waiting)


def test_a_cancel_waits_for_its_transactions_check(
    make_ctx: Any, refbackend: ReferenceBackend
) -> None:
    ctx = make_ctx()
    tx = offline_check(ctx, refbackend)
    cancel = ctx.journal.begin(
        RequestKind.CANCEL, bodies.cancel("wrong customer"), tx=tx, now=ctx.clock() - 60
    )
    refbackend.faults.error_500 = 1  # the check gets no answer this time
    report = sync_once(ctx)
    assert report.uploaded == 0
    assert ctx.journal.request(cancel.id).attempts == 0  # never sent before its check
    report = sync_once(ctx, everything=True)
    assert report.uploaded == 2 and report.remaining == 0
    assert ctx.journal.request(cancel.id).status == "cancelled"


# --- item: every offline acceptance the backend does not confirm is a conflict ---------------


def test_an_offline_acceptance_of_a_cancelled_receipt_is_a_conflict(
    make_ctx: Any, refbackend: ReferenceBackend, get_bearer: Any, demo_client: Client
) -> None:
    ctx = make_ctx()
    tx = offline_check(ctx, refbackend, 4500)
    bearer = get_bearer(refbackend.url, *demo_client)
    resp = requests.post(
        f"{refbackend.url}/v1/transactions/{tx}/cancel",
        json={"reason": "refunded in the app"},
        headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    assert sync_once(ctx).uploaded == 1
    (row,) = ctx.journal.receipt_history(tx)
    assert (row.outcome, row.reason, row.synced) == ("conflict", "cancelled", True)
    figures = read_figures(ctx.journal)
    assert figures.conflicts == 1 and figures.outcomes.get("checked_offline") is None
    assert ctx.journal.offline_exposure() == (0, 0)


# --- item: an unknown outcome, then an offline acceptance, then another device's check --------


def test_offline_acceptance_after_an_unknown_outcome_is_reported_as_a_conflict(
    make_ctx: Any, refbackend: ReferenceBackend, get_bearer: Any, demo_client: Client
) -> None:
    ctx = make_ctx()
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 3300)
    refbackend.faults.error_500 = 1000  # every try of this scan: outcome unknown
    outcome = scan(ctx, token)
    assert outcome.word == "checked_offline"
    (first,) = ctx.journal.open_requests()
    assert first.maybe_delivered and first.body["offline"] is False  # resent unchanged
    refbackend.faults.clear()

    # Meanwhile the customer had the receipt checked at another counter.
    bearer = get_bearer(refbackend.url, *demo_client)
    other = dict(first.body, device="counter-2")
    resp = requests.post(
        f"{refbackend.url}/v1/receipts/check",
        json=other,
        headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text

    report = sync_once(ctx, everything=True)
    assert report.remaining == 0 and report.conflicts == 1
    rows = list(ctx.journal.conn.execute("SELECT * FROM requests WHERE tx = ? ORDER BY id", (tx,)))
    assert len(rows) == 2  # the check, and one report of the offline acceptance
    assert rows[0]["idem_key"] == first.key and rows[0]["status"] == "already_checked"
    report_body = json.loads(rows[1]["body"])
    assert report_body == dict(first.body, offline=True)
    assert rows[1]["idem_key"] != first.key and rows[1]["status"] == "already_checked"
    assert history(refbackend, demo_client)[tx]["conflict"] is True
    (row,) = ctx.journal.receipt_history(tx)
    assert (row.outcome, row.reason) == ("conflict", "already_checked")
    assert sync_once(ctx, everything=True).uploaded == 0  # reported exactly once


# --- item: marked as attempted before the first byte ------------------------------------------


def test_an_answer_that_cannot_be_stored_never_lets_the_body_change(
    make_ctx: Any, refbackend: ReferenceBackend, demo_client: Client
) -> None:
    ctx = make_ctx()
    _, token = refbackend.mint_receipt(DEMO_VENUE, 2700)
    refused = {"on": True}

    def deny_settle(action: int, table: str | None, *_: Any) -> int:
        if refused["on"] and action == sqlite3.SQLITE_UPDATE and table == "requests":
            return sqlite3.SQLITE_DENY  # as a full disk or an I/O error would refuse it
        return sqlite3.SQLITE_OK

    ctx.journal.conn.set_authorizer(deny_settle)
    with pytest.raises(JournalError):
        scan(ctx, token)  # checked at the backend (200), but the answer is not stored
    refused["on"] = False
    (request,) = ctx.journal.open_requests()
    assert request.maybe_delivered and request.body["offline"] is False

    refbackend.pause()  # the network goes; the customer scans again
    for _ in range(2):
        ctx.health.failure()
    again = scan(ctx, token)
    assert again.word == "checked_offline"
    assert ctx.journal.request(request.id).text == request.text  # never rewritten
    refbackend.resume()

    report = sync_once(ctx, everything=True)
    assert (report.uploaded, report.error, report.remaining) == (1, None, 0)
    assert ctx.journal.request(request.id).status == "checked"  # the replayed first answer
    keys = backend_rows(
        refbackend, "SELECT key, code FROM idempotency WHERE client = ?", (demo_client[0],)
    )
    assert [(r["key"], r["code"]) for r in keys] == [(request.key, 200)]


def test_a_refused_connection_takes_the_mark_back(
    make_ctx: Any, refbackend: ReferenceBackend
) -> None:
    ctx = make_ctx()
    tx = offline_check(ctx, refbackend)
    (request,) = ctx.journal.open_requests()
    refbackend.pause()
    report = sync_once(ctx, everything=True)
    assert report.error is not None and report.uploaded == 0
    after = ctx.journal.request(request.id)
    assert not after.maybe_delivered and after.attempts == 1  # provably never left
    refbackend.resume()
    assert sync_once(ctx).uploaded == 1
    assert ctx.journal.receipt_history(tx)[0].outcome == "checked_offline"


# --- flushes: two per online scan, grouped in replay --------------------------------------------


def test_an_online_scan_makes_two_commits(make_ctx: Any, refbackend: ReferenceBackend) -> None:
    ctx = make_ctx()
    _, warm = refbackend.mint_receipt(DEMO_VENUE, 1000)
    assert scan(ctx, warm).word == "checked"
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 1000)
    seen = commits(ctx.journal)
    outcome = scan(ctx, token)
    assert outcome.word == "checked"
    assert len(seen) == 2  # the request, marked as sent; then answer + outcome + last sync
    (row,) = ctx.journal.receipt_history(tx)
    assert row.synced and row.shown_accepted
    assert ctx.last_sync() is not None


def test_replay_groups_its_commits(make_ctx: Any, refbackend: ReferenceBackend) -> None:
    ctx = make_ctx()
    waiting = [offline_check(ctx, refbackend) for _ in range(40)]
    seen = commits(ctx.journal)
    report = sync_once(ctx)
    assert (report.uploaded, report.remaining) == (len(waiting), 0)
    # windows of 1, 2, 4, 8, 16, 9: one commit per window (the answers of the window
    # before and the mark of the next), the first window's mark and the last's answers
    assert len(seen) <= 8, len(seen)
    assert all(o.synced for o in ctx.journal.outcomes())


class WatchingPool(UploadPool):
    """The real upload pool; before each request leaves it notes which requests the journal
    (read on a connection of its own) holds as attempted, waiting a little for more."""

    def __init__(self, client: Any, journal_path: Path) -> None:
        super().__init__(client)
        self._path = journal_path
        self.marked_when_sent: list[tuple[int, set[int]]] = []

    def _one(self, request: Any) -> Any:
        marked: set[int] = set()
        with Journal.open(self._path) as reader:
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                marked = {
                    int(r[0])
                    for r in reader.conn.execute("SELECT id FROM requests WHERE maybe_delivered")
                }
                if any(i > request.id + 8 for i in marked):
                    break
                time.sleep(0.01)
        self.marked_when_sent.append((request.id, marked))
        return super()._one(request)


def test_replay_marks_the_next_window_while_one_is_in_flight(
    make_ctx: Any, refbackend: ReferenceBackend
) -> None:
    """The flush of the next window's mark overlaps the requests in flight, instead of
    coming between two windows; and nothing is sent before it is marked."""
    ctx = make_ctx()
    waiting = [offline_check(ctx, refbackend) for _ in range(30)]
    pool = WatchingPool(ctx.client, ctx.cfg.journal.path)
    try:
        report = sync_once(ctx, pipeline=pool)
    finally:
        pool.close()
    assert (report.uploaded, report.remaining) == (len(waiting), 0)
    assert all(rid in marked for rid, marked in pool.marked_when_sent)
    # windows 1, 2, 4, 8, 15: while the window of 4 (ids 4-7) is in flight, the
    # window of 8 after it is marked already
    in_flight = {rid: marked for rid, marked in pool.marked_when_sent}
    first_of_window = min(in_flight)
    assert any(i >= first_of_window + 7 for i in in_flight[first_of_window + 3])
    assert all(o.synced for o in ctx.journal.outcomes())


def test_the_technician_screen_counts_quarantined_uploads(make_sim: Any) -> None:
    sim = make_sim(journal={"quarantine_after": 1})
    with Journal.open(sim.cfg.journal.path) as journal:
        text = json.dumps({"paycode": "123456789012"})  # refused as malformed every time
        journal.begin(RequestKind.CHARGE, text, ref="123456789012", now=0.0)
    deadline = time.monotonic() + 15.0
    while sim.counter.tech_info().quarantined != 1:
        assert time.monotonic() < deadline, "the sync worker never quarantined the request"
        sim.counter.sync.wake()
        time.sleep(0.05)


def test_a_backed_off_request_is_retried_after_a_backward_clock_jump(make_ctx: Any) -> None:
    ctx = make_ctx(quarantine_after=100)
    wall, boot = [ctx.clock()], [BootTime("boot-1", 100.0)]
    ctx.clock = lambda: wall[0]
    ctx.boot = lambda: boot[0]
    bad = refused_request(ctx)
    assert sync_once(ctx).failed == 1
    wait = ctx.journal.request(bad).next_try_at - wall[0]
    assert 0 < wait < 10
    # the wall clock is set back a day while the backoff runs out on the boot-time clock
    wall[0] -= 86400
    assert sync_once(ctx).failed == 0  # still backing off
    assert ctx.journal.next_due(wall[0], boot[0]) == pytest.approx(wall[0] + wait)
    boot[0] = BootTime("boot-1", 100.0 + wait + 0.01)
    assert sync_once(ctx).failed == 1  # retried when its backoff ran out
    # after a reboot the earlier boot's clock proves nothing: retried at once
    wall[0] -= 86400
    boot[0] = BootTime("boot-2", 5.0)
    assert sync_once(ctx).failed == 1
    assert ctx.journal.request(bad).attempts == 3
