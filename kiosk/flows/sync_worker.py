"""The upload thread of ``kiosk run``: upload rounds (:func:`kiosk.flows.sync.sync_once`)
in the background, and the upkeep between them.

Besides uploading, :class:`SyncWorker` keeps the key set and the venue's services
fresh, probes the backend while the counter is offline, checkpoints and prunes the
journal, and runs the journal's daily integrity check. It has its own journal
connection and backend clients (opened on its own thread), so a slow upload never
delays a scan.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kiosk.clock import due
from kiosk.errors import JournalCorrupt, JournalError, KioskError
from kiosk.flows.context import FlowContext
from kiosk.flows.delivery import backoff
from kiosk.flows.sync import SyncReport, sync_once
from kiosk.journal.integrity import CHECK_EVERY_S, quick_check
from kiosk.journal.schema import translated
from kiosk.worker import Worker

log = logging.getLogger("kiosk.sync")

KEYS_MAX_AGE_S = 24 * 3600.0
VENUE_MAX_AGE_S = 3600.0
PRUNE_EVERY_S = 24 * 3600.0


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

    @property
    def quarantined(self) -> int:
        """Requests set aside after the last round (for the technician screen)."""
        report = self.last_report
        return 0 if report is None else report.quarantined

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
        the engine, which reopens it and so mends it (:mod:`kiosk.journal.repair`)."""
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
            # The round's own pipeline: its threads and extra connections end with the
            # round, so an idle kiosk keeps one connection and no upload threads.
            report = sync_once(ctx, progress=self.beat)
            self.last_report = report
            if report.error is None:
                self._attempt = 0
                next_at = ctx.journal.next_due(ctx.clock())
                if next_at is not None and report.remaining:  # a backed-off request's turn
                    wait = min(wait, max(next_at - ctx.clock(), 0.5))
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
        ctx.journal.checkpoint()  # the engine's connection leaves them to this thread
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
