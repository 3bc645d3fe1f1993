"""Requests the backend refuses for ever: they never hold back another upload, in the
service's rounds or in ``kiosk sync``; their failures count in every round until they are
quarantined; and the counter goes offline only when the backend fails as a whole.

The backend is the reference backend behind a proxy on 127.0.0.1 that answers 500 to the
chosen Idempotency-Keys (and passes everything else through).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from refusing_proxy import RefusingProxy

from kiosk.backend import bodies
from kiosk.config import parse_config
from kiosk.figures import read_figures
from kiosk.flows.context import FlowContext, default_client, open_context
from kiosk.flows.sync import sync_once
from kiosk.flows.upload_pool import UploadPool
from kiosk.journal import Journal
from kiosk.vocabulary import RequestKind
from refbackend import DEMO_VENUE, ReferenceBackend

Client = tuple[str, str]


@pytest.fixture
def proxy(refbackend: ReferenceBackend) -> Iterator[RefusingProxy]:
    with RefusingProxy(refbackend.url) as server:
        yield server


@pytest.fixture
def make_ctx(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: Client, proxy: RefusingProxy
) -> Iterator[Any]:
    made: list[FlowContext] = []
    secret = tmp_path / "client_secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)

    def make(**journal: Any) -> FlowContext:
        cfg = parse_config(
            {
                "device": {"id": "counter-1", "venue": DEMO_VENUE},
                "backend": {
                    "url": proxy.url,
                    "client_id": demo_client[0],
                    "client_secret_file": str(secret),
                    "issuer": refbackend.issuer,
                    "connect_timeout": 0.5,
                    "read_timeout": 2.0,
                },
                "display": {"driver": "none"},
                "journal": {"path": str(tmp_path / "journal.db"), "min_free_mb": 0, **journal},
            }
        )
        ctx = open_context(cfg, client_factory=default_client, clock_synced=lambda: True)
        ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
        ctx.mark_synced()
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.journal.close()
        ctx.client.close()


def offline_check(journal: Journal, backend: ReferenceBackend, cents: int = 1000) -> str:
    """Journal a receipt accepted offline a minute ago (as the receipt flow does)."""
    tx, token = backend.mint_receipt(DEMO_VENUE, cents)
    body = bodies.receipt_check(
        token, venue=DEMO_VENUE, device="counter-1", scanned_at=datetime.now(UTC), offline=True
    )
    request = journal.begin(
        RequestKind.RECEIPT, body, tx=tx, amount_cents=cents, offline=True,
        now=datetime.now(UTC).timestamp() - 60,
    )  # fmt: skip
    journal.record(
        RequestKind.RECEIPT, "checked_offline", tx=tx, amount_cents=cents,
        request_id=request.id, synced=False, shown_accepted=True,
    )  # fmt: skip
    return tx


def key_of(journal: Journal, tx: str) -> str:
    (row,) = journal.conn.execute("SELECT idem_key FROM requests WHERE tx = ?", (tx,))
    return str(row[0])


def backend_state(backend: ReferenceBackend, tx: str) -> str | None:
    conn = sqlite3.connect(f"file:{backend.db}?mode=ro", uri=True, timeout=5.0)
    try:
        row = conn.execute("SELECT state FROM transactions WHERE tx = ?", (tx,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def refused_and_behind(
    ctx: FlowContext, backend: ReferenceBackend, proxy: RefusingProxy, refused: int, behind: int
) -> tuple[list[str], list[str]]:
    """*refused* offline checks the backend refuses for ever, then *behind* good ones."""
    bad = [offline_check(ctx.journal, backend) for _ in range(refused)]
    proxy.refuse(*(key_of(ctx.journal, tx) for tx in bad))
    good = [offline_check(ctx.journal, backend) for _ in range(behind)]
    return bad, good


def failures(ctx: FlowContext, tx: str) -> tuple[str, int]:
    (row,) = ctx.journal.conn.execute("SELECT state, failures FROM requests WHERE tx = ?", (tx,))
    return str(row[0]), int(row[1])


def test_kiosk_sync_goes_past_three_refused_requests_and_quarantines_them(
    make_ctx: Any, refbackend: ReferenceBackend, proxy: RefusingProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    ctx = make_ctx(quarantine_after=3, quarantine_retry=3600.0)
    bad, good = refused_and_behind(ctx, refbackend, proxy, refused=3, behind=5)

    report = sync_once(ctx, everything=True)  # what `kiosk sync` runs
    assert (report.uploaded, report.failed, report.remaining, report.error) == (5, 3, 3, None)
    assert all(backend_state(refbackend, tx) == "checked" for tx in good)
    assert all(backend_state(refbackend, tx) == "paid" for tx in bad)  # never reached it
    assert [failures(ctx, tx) for tx in bad] == [("pending", 1)] * 3
    assert not ctx.health.offline  # one request failing is not the backend failing

    caplog.set_level(logging.WARNING, logger="kiosk.sync")
    for round_ in (2, 3):
        report = sync_once(ctx, everything=True)  # nothing else left: only the refused ones
        assert (report.uploaded, report.failed, report.error) == (0, 3, None), round_
    assert [failures(ctx, tx) for tx in bad] == [("quarantined", 3)] * 3
    assert read_figures(ctx.journal).quarantined == 3
    assert not ctx.health.offline
    lines = [r.getMessage() for r in caplog.records if "quarantined after" in r.getMessage()]
    assert len(lines) == 3
    assert sum(proxy.refusals.values()) == 9  # each refused request: one try per round


def test_the_service_round_uploads_behind_refused_requests_and_stays_online(
    make_ctx: Any, refbackend: ReferenceBackend, proxy: RefusingProxy
) -> None:
    ctx = make_ctx(quarantine_after=2)
    bad, good = refused_and_behind(ctx, refbackend, proxy, refused=4, behind=6)
    report = sync_once(ctx)  # the service's round: the due requests
    assert (report.uploaded, report.failed, report.error) == (6, 4, None)
    assert all(backend_state(refbackend, tx) == "checked" for tx in good)
    assert not ctx.health.offline
    assert [failures(ctx, tx)[1] for tx in bad] == [1, 1, 1, 1]

    # A new offline acceptance later in the day: the refused ones (due again) never hold it.
    later = offline_check(ctx.journal, refbackend)
    ctx.journal.conn.execute("UPDATE requests SET next_try_at = 0, next_try_boot_id = ''")
    ctx.journal.conn.commit()
    report = sync_once(ctx)
    assert (report.uploaded, report.failed) == (1, 4)
    assert backend_state(refbackend, later) == "checked"
    assert [failures(ctx, tx) for tx in bad] == [("quarantined", 2)] * 4


def test_a_lone_refused_request_is_counted_and_quarantined(
    make_ctx: Any, refbackend: ReferenceBackend, proxy: RefusingProxy
) -> None:
    ctx = make_ctx(quarantine_after=2)
    (bad,), _ = refused_and_behind(ctx, refbackend, proxy, refused=1, behind=0)
    for _ in range(2):
        report = sync_once(ctx, everything=True)
        assert (report.uploaded, report.failed, report.error) == (0, 1, None)
    assert failures(ctx, bad) == ("quarantined", 2)
    assert not ctx.health.offline


def test_a_backend_failing_as_a_whole_is_offline_and_counts_nothing(
    make_ctx: Any, refbackend: ReferenceBackend, proxy: RefusingProxy
) -> None:
    ctx = make_ctx(quarantine_after=1)
    waiting = [offline_check(ctx.journal, refbackend) for _ in range(6)]
    proxy.down = True
    report = sync_once(ctx, everything=True)
    assert report.uploaded == 0 and report.error is not None
    assert report.failed <= 3  # a failing backend is not asked about every request
    assert ctx.health.offline
    assert [failures(ctx, tx) for tx in waiting] == [("pending", 0)] * 6
    proxy.down = False
    report = sync_once(ctx, everything=True)
    assert (report.uploaded, report.remaining) == (6, 0)
    assert not ctx.health.offline


class FailingFrom(UploadPool):
    """The real upload pool; the backend starts failing as a whole when request *first*
    is about to leave."""

    def __init__(self, client: Any, proxy: RefusingProxy, first: int) -> None:
        super().__init__(client)
        self._proxy, self._first = proxy, first
        self.sent: list[int] = []

    def _one(self, request: Any) -> Any:
        if request.id >= self._first:
            self._proxy.down = True
        self.sent.append(request.id)
        return super()._one(request)


def test_a_window_marked_ahead_but_never_sent_has_its_mark_taken_back(
    make_ctx: Any, refbackend: ReferenceBackend, proxy: RefusingProxy
) -> None:
    """The next window is marked while one is in flight; when the backend then fails as a
    whole, the requests of it that never left are as they were: not attempted."""
    ctx = make_ctx(quarantine_after=100)
    waiting = [offline_check(ctx.journal, refbackend) for _ in range(30)]
    ids = [int(r[0]) for r in ctx.journal.conn.execute("SELECT id FROM requests ORDER BY id")]
    pool = FailingFrom(ctx.client, proxy, first=ids[3])  # the window of four fails
    try:
        report = sync_once(ctx, everything=True, pipeline=pool)
    finally:
        pool.close()
    assert report.uploaded == 3 and report.error is not None
    rows = ctx.journal.conn.execute("SELECT id, maybe_delivered, attempts FROM requests")
    marks = {int(i): (int(m), int(a)) for i, m, a in rows}
    never_sent = [i for i in ids if i not in pool.sent]
    assert len(never_sent) >= 20
    assert all(marks[i] == (0, 0) for i in never_sent), [marks[i] for i in never_sent]
    assert all(marks[i][0] == 1 for i in pool.sent)  # each may have arrived
    proxy.down = False
    report = sync_once(ctx, everything=True)
    assert (report.uploaded, report.remaining) == (len(waiting) - 3, 0)
