"""Upload what the journal still owes the backend, in order, exactly once.

``sync_once`` is what ``kiosk sync`` runs; :class:`SyncWorker` runs it in the
background of ``kiosk run`` and also keeps the key set and the venue's
services fresh, probes the backend while offline, and prunes old entries.

The worker has its own journal connection and backend client (opened on its
own thread), so a slow upload never delays a customer's scan. Both threads
re-send journal rows verbatim, so a request sent twice is answered once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.clock import due
from kiosk.errors import BackendError, JournalCorrupt, JournalError, KioskError
from kiosk.flows.context import FlowContext
from kiosk.flows.delivery import backoff
from kiosk.journal import Request
from kiosk.journal.integrity import CHECK_EVERY_S, quick_check
from kiosk.journal.schema import translated
from kiosk.worker import Worker

log = logging.getLogger("kiosk.sync")

KEYS_MAX_AGE_S = 24 * 3600.0
VENUE_MAX_AGE_S = 3600.0
PRUNE_EVERY_S = 24 * 3600.0
IN_HAND_S = 30.0


@dataclass(frozen=True)
class SyncReport:
    uploaded: int
    conflicts: int
    remaining: int
    error: str | None = None
    retry_after: float | None = None


def sync_once(ctx: FlowContext, *, progress: Callable[[], None] | None = None) -> SyncReport:
    """Send every open request, oldest first; stop at the first one without an answer.

    *progress* is called before each request (the worker's heartbeat).
    """
    uploaded = 0
    conflicts_before = len(ctx.journal.conflicts())
    for request in ctx.journal.open_requests():
        if progress is not None:
            progress()
        if _in_hand(ctx, request):
            continue
        try:
            result = ctx.send(request, deadline=ctx.monotonic())
        except BackendError as exc:
            retry_after = getattr(exc, "retry_after", None)
            log.info("sync paused: %s", exc)
            return SyncReport(
                uploaded,
                _new_conflicts(ctx, conflicts_before),
                ctx.journal.pending_count(),
                str(exc),
                retry_after,
            )
        uploaded += 1
        log.info("uploaded %s request %d: %s", request.kind, request.id, result.status)
    conflicts = _new_conflicts(ctx, conflicts_before)
    if conflicts:
        log.warning("%d offline check(s) conflicted with an earlier check", conflicts)
    return SyncReport(uploaded, conflicts, ctx.journal.pending_count())


def _in_hand(ctx: FlowContext, request: Request) -> bool:
    """A fresh request that was never sent nor accepted offline belongs to the scan in hand.

    The engine is sending it right now (or will void it); uploading it here could
    race the engine's decision to turn it into an offline check.
    """
    fresh = ctx.clock() - request.created_at < IN_HAND_S
    return fresh and not request.offline and not request.maybe_delivered


def _new_conflicts(ctx: FlowContext, before: int) -> int:
    return len(ctx.journal.conflicts()) - before


class SyncWorker(Worker):
    """Background uploads and upkeep; ``start``/``stop`` are called by the counter.

    A journal error pauses one round; any other exception is logged by the
    worker base and the loop goes on, so the upload thread never ends silently
    (the watchdog reads its heartbeat).
    """

    def __init__(
        self,
        open_context: Callable[[], FlowContext],
        *,
        interval: float = 30.0,
        offline_probe: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_damaged: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("kiosk-sync", monotonic=monotonic)
        self._open_context = open_context
        self._on_damaged = on_damaged  # the journal failed its daily check
        self._checked_at = 0.0
        self._interval = interval
        self._offline_probe = offline_probe
        self._wake = threading.Event()
        self._ctx: FlowContext | None = None
        self._attempt = 0
        self._last_prune = 0.0
        self.last_report: SyncReport | None = None

    def wake(self) -> None:
        """Ask for an upload now (thread-safe)."""
        self._wake.set()

    def _interrupt(self) -> None:
        self._wake.set()

    def _teardown(self) -> None:
        if self._ctx is not None:
            self._ctx.journal.close()
            self._ctx.client.close()
            self._ctx = None

    def _step(self) -> None:
        if self._ctx is None:
            try:
                self._ctx = self._open_context()
            except KioskError as exc:
                log.error("sync worker cannot start: %s", exc)
                self._pause(self._interval)
                return
            self._checked_at = self._monotonic()  # opening ran the check
        if not self._journal_intact(self._ctx):
            self._pause(self._interval)
            return
        self._pause(self._round(self._ctx))

    def _journal_intact(self, ctx: FlowContext) -> bool:
        """Once a day, ``PRAGMA quick_check``; when it fails, let go of the journal and tell
        the engine, which moves it aside (with the journal alarm) and starts a fresh one."""
        if self._monotonic() - self._checked_at < CHECK_EVERY_S:
            return True
        try:
            with translated():
                problems = quick_check(ctx.journal.conn)
        except JournalCorrupt as exc:
            problems = [str(exc)]
        except JournalError as exc:  # busy or I/O: try again next round
            log.warning("journal check postponed: %s", exc)
            return True
        self._checked_at = self._monotonic()
        if not problems:
            log.info("journal passed its daily check")
            return True
        log.error("journal failed its daily check: %s", problems[0])
        self._teardown()
        self._on_damaged()
        return False

    def _pause(self, seconds: float) -> None:
        """Wait for *seconds* or a wake-up, beating meanwhile: only a stuck round goes stale."""
        deadline = self._monotonic() + seconds
        while not self._wake.wait(min(max(deadline - self._monotonic(), 0.0), 1.0)):
            self.beat()
            if self._monotonic() >= deadline:
                break
        self._wake.clear()

    def _round(self, ctx: FlowContext) -> float:
        """One upload round and its upkeep; returns the seconds until the next one."""
        wait = self._interval
        try:
            report = sync_once(ctx, progress=self.beat)
            self.last_report = report
            if report.error is None:
                self._attempt = 0
                self._upkeep(ctx)
                if ctx.clock() - self._last_prune >= PRUNE_EVERY_S:
                    ctx.journal.prune(ctx.cfg.journal.retention_days, now=ctx.clock())
                    self._last_prune = ctx.clock()
            else:
                self._attempt += 1
                wait = max(backoff(self._attempt, report.retry_after), 0.5)
            if ctx.health.offline:
                wait = min(wait, self._offline_probe)
        except JournalError as exc:
            log.error("sync worker: %s", exc)
            wait = self._interval
        return wait

    def _upkeep(self, ctx: FlowContext) -> None:
        now = ctx.clock()
        probe = ctx.health.offline
        if probe or due(ctx.keys.fetched_at, now, KEYS_MAX_AGE_S):
            if ctx.keys.refresh(ctx.client, ctx.journal, now=now):
                ctx.health.success()
                if ctx.journal.pending_count() == 0:
                    ctx.mark_synced()
            elif probe:
                ctx.health.failure()
        if not ctx.health.offline and due(ctx.venue.fetched_at, now, VENUE_MAX_AGE_S):
            ctx.venue.refresh(ctx.client, ctx.journal, ctx.cfg.device.venue, now=now)
