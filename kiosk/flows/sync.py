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
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.errors import BackendError, JournalError, KioskError
from kiosk.flows.context import FlowContext
from kiosk.flows.delivery import backoff
from kiosk.journal import Request

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


def sync_once(ctx: FlowContext) -> SyncReport:
    """Send every open request, oldest first; stop at the first one without an answer."""
    uploaded = 0
    conflicts_before = len(ctx.journal.conflicts())
    for request in ctx.journal.open_requests():
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


class SyncWorker:
    """Background uploads and upkeep; ``start``/``stop`` are called by the service."""

    def __init__(
        self,
        open_context: Callable[[], FlowContext],
        *,
        interval: float = 30.0,
        offline_probe: float = 3.0,
    ) -> None:
        self._open_context = open_context
        self._interval = interval
        self._offline_probe = offline_probe
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: SyncReport | None = None
        self.alive_at: float | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="kiosk-sync", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Ask for an upload now (thread-safe)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and join; returns False if the thread did not end in time."""
        self._stopping.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            log.error("sync worker did not stop within %.1f s", timeout)
        return not alive

    def _run(self) -> None:
        try:
            ctx = self._open_context()
        except KioskError as exc:
            log.error("sync worker cannot start: %s", exc)
            return
        try:
            self._loop(ctx)
        finally:
            ctx.journal.close()
            ctx.client.close()

    def _loop(self, ctx: FlowContext) -> None:
        attempt = 0
        last_prune = 0.0
        while not self._stopping.is_set():
            self.alive_at = ctx.monotonic()
            wait = self._interval
            try:
                report = sync_once(ctx)
                self.last_report = report
                if report.error is None:
                    attempt = 0
                    self._upkeep(ctx)
                    if ctx.clock() - last_prune >= PRUNE_EVERY_S:
                        ctx.journal.prune(ctx.cfg.journal.retention_days, now=ctx.clock())
                        last_prune = ctx.clock()
                else:
                    attempt += 1
                    wait = max(backoff(attempt, report.retry_after), 0.5)
                if ctx.health.offline:
                    wait = min(wait, self._offline_probe)
            except JournalError as exc:
                log.error("sync worker: %s", exc)
                wait = self._interval
            self._wake.wait(wait)
            self._wake.clear()

    def _upkeep(self, ctx: FlowContext) -> None:
        now = ctx.clock()
        probe = ctx.health.offline
        if probe or now - ctx.keys.fetched_at >= KEYS_MAX_AGE_S:
            if ctx.keys.refresh(ctx.client, ctx.journal, now=now):
                ctx.health.success()
                if ctx.journal.pending_count() == 0:
                    ctx.mark_synced()
            elif probe:
                ctx.health.failure()
        if not ctx.health.offline and now - ctx.venue.fetched_at >= VENUE_MAX_AGE_S:
            ctx.venue.refresh(ctx.client, ctx.journal, ctx.cfg.device.venue, now=now)
