"""Upload what the journal still owes the backend, exactly once, none stuck behind another.

``sync_once`` is what ``kiosk sync`` runs; :class:`~kiosk.flows.sync_worker.SyncWorker` runs
it in the background of ``kiosk run`` and also keeps the key set and the venue's
services fresh, probes the backend while offline, and prunes old entries.

A round sends the open requests oldest first in windows (1, 2, 4, ... up to
:data:`WINDOW_MAX`), a few in flight at once (:class:`~kiosk.flows.pipeline.Pipeline`):
one commit marks a window as attempted, one settles its answers (a crash between
is harmless: the resend under the same key gets the answer replayed). A cancel
waits for its transaction's check or charge.

A request without an answer is backed off on its own (``next_try_at``) and the
round goes on with the next one; after ``journal.quarantine_after`` failures
that were its own (other requests got through meanwhile, or the backend called
it malformed) it is quarantined: kept, retried every ``journal.quarantine_retry``
seconds, counted by ``kiosk status`` and the technician screen. A round stops at
once when nothing can be delivered (connection refused, credentials refused), and
after a few windows without a single answer (the backend is failing as a whole).

The worker has its own journal connection and backend clients (opened on its own
thread), so a slow upload never delays a scan. Both threads re-send journal rows
verbatim, so a request sent twice is answered once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.errors import (
    BackendAuthError,
    BackendError,
    BackendProtocolError,
    BackendUnreachable,
    OutcomeUnknown,
)
from kiosk.flows.context import FlowContext
from kiosk.flows.delivery import backoff, settle
from kiosk.flows.pipeline import Answer, Pipeline
from kiosk.journal import Request
from kiosk.vocabulary import RequestKind, RequestState

log = logging.getLogger("kiosk.sync")

KEYS_MAX_AGE_S = 24 * 3600.0
VENUE_MAX_AGE_S = 3600.0
PRUNE_EVERY_S = 24 * 3600.0
IN_HAND_S = 30.0
WINDOW_MAX = 64
DRY_WINDOWS = 3  # windows in a row without any answer, before any upload: stop the round


@dataclass(frozen=True)
class SyncReport:
    uploaded: int
    conflicts: int
    remaining: int
    error: str | None = None
    retry_after: float | None = None
    quarantined: int = 0  # requests retried only rarely, included in remaining
    failed: int = 0  # requests that got no answer in this round (backed off)


@dataclass
class _Round:
    """What one call of :func:`sync_once` has done so far."""

    everything: bool
    after: int = 0  # the highest request id looked at
    tried: set[int] = field(default_factory=set)
    deferred: bool = False  # a cancel waited for its check or charge
    uploaded: int = 0
    failed: int = 0
    uncounted: list[int] = field(default_factory=list)  # failures not yet known to be own
    last: BackendError | None = None  # the latest failure of a request
    error: BackendError | None = None  # why the round stopped early


def sync_once(
    ctx: FlowContext,
    *,
    progress: Callable[[], None] | None = None,
    everything: bool = False,
    pipeline: Pipeline | None = None,
) -> SyncReport:
    """Send the open requests that are due (every open one if *everything*, as
    ``kiosk sync`` does), each at most once, oldest first.

    *progress* is called before each window (the worker's heartbeat); *pipeline*
    is reused between calls (one is made and closed here if not given).
    """
    conflicts_before = len(ctx.journal.conflicts())
    state = _Round(everything)
    pipe = pipeline if pipeline is not None else Pipeline(ctx.client)
    try:
        _run(ctx, state, pipe, progress)
    finally:
        if pipeline is None:
            pipe.close()
    _tally_failures(ctx, state)
    conflicts = len(ctx.journal.conflicts()) - conflicts_before
    if conflicts:
        log.warning("%d offline check(s) were not confirmed by the backend", conflicts)
    quarantined = ctx.journal.quarantined_count()
    error = state.error
    if error is not None:
        log.info("sync paused: %s", error)
    return SyncReport(
        state.uploaded,
        conflicts,
        ctx.journal.pending_count() + quarantined,
        None if error is None else str(error),
        getattr(error, "retry_after", None),
        quarantined,
        state.failed,
    )


def _run(
    ctx: FlowContext, state: _Round, pipe: Pipeline, progress: Callable[[], None] | None
) -> None:
    size, dry, settled_since_sweep = 1, 0, False
    while True:
        batch = _batch(ctx, state, size)
        if not batch:
            if state.deferred and settled_since_sweep:  # a cancel's check may be done now
                state.after, state.deferred, settled_since_sweep = 0, False, False
                continue
            return
        if progress is not None:
            progress()
        marks = [r.id for r in batch if not r.maybe_delivered]
        if marks:
            ctx.journal.mark_sending(marks)
        answered, stop = _settle(ctx, state, pipe.send(batch))
        if stop:
            return
        if answered:
            size, dry, settled_since_sweep = min(size * 2, WINDOW_MAX), 0, True
        else:
            size, dry = 1, dry + 1
            if dry >= DRY_WINDOWS and state.uploaded == 0:
                state.error = state.last
                return


def _batch(ctx: FlowContext, state: _Round, size: int) -> list[Request]:
    """The next *size* due requests, in order, without a cancel whose check is open."""
    waiting = ctx.journal.waiting_txs()
    out: list[Request] = []
    while len(out) < size:
        page = ctx.journal.due_requests(
            ctx.clock(), everything=state.everything, after=state.after, limit=size + 16
        )
        if not page:
            break
        for request in page:
            state.after = request.id
            if request.id in state.tried or _in_hand(ctx, request):
                continue
            blocker = waiting.get(request.tx or "") if request.kind == RequestKind.CANCEL else None
            if blocker is not None and blocker < request.id:
                state.deferred = True
                continue
            state.tried.add(request.id)
            out.append(request)
            if len(out) >= size:
                break
    return out


def _settle(ctx: FlowContext, state: _Round, answers: list[Answer]) -> tuple[int, bool]:
    """Write a window's answers and failures in one commit; (answers, stop the round)."""
    now = ctx.clock()
    retry_s = ctx.cfg.journal.quarantine_retry
    answered, stop = 0, False
    with ctx.journal.transaction():
        for request, answer in answers:
            if not isinstance(answer, BackendError):
                settle(ctx.journal, request, answer)
                log.info("uploaded %s request %d: %s", request.kind, request.id, answer.status)
                answered += 1
                continue
            state.failed += 1
            if isinstance(answer, BackendAuthError | BackendUnreachable):
                # Nothing reached the backend (or it refused us as a whole): the round ends.
                stop, state.error = True, answer
                ctx.journal.upload_failed(
                    request.id,
                    str(answer),
                    maybe_delivered=isinstance(answer, BackendAuthError),
                    before=request.maybe_delivered,
                    counted=False,
                    retry_at=0.0,
                )
                continue
            own = isinstance(answer, BackendProtocolError)  # the backend refused this one
            retry_after = answer.retry_after if isinstance(answer, OutcomeUnknown) else None
            wait = (
                retry_s
                if request.state == RequestState.QUARANTINED
                else backoff(min(request.attempts + 1, 16), retry_after)
            )
            ctx.journal.upload_failed(
                request.id,
                str(answer),
                maybe_delivered=True,
                before=True,
                counted=own,
                retry_at=now + wait,
            )
            if not own:
                state.uncounted.append(request.id)
            state.last = answer
            log.info("%s request %d: no answer (%s); next try in %.0f s",
                     request.kind, request.id, answer, wait)  # fmt: skip
        if answered:
            ctx.mark_synced()
    if answered:
        ctx.health.success()
        state.uploaded += answered
    elif answers:
        ctx.health.failure(timed_out=isinstance(state.last, OutcomeUnknown))
    return answered, stop


def _tally_failures(ctx: FlowContext, state: _Round) -> None:
    """Failures become the request's own once others got through; quarantine the worst."""
    if not state.failed:
        return
    if state.uploaded and state.uncounted:
        ctx.journal.count_failures(state.uncounted)
    cfg = ctx.cfg.journal
    for request in ctx.journal.quarantine_due(
        cfg.quarantine_after, ctx.clock() + cfg.quarantine_retry
    ):
        log.warning(
            "%s request %d (tx %s) quarantined after %d failed uploads: %s;"
            " kept and retried every %.0f s",
            request.kind,
            request.id,
            request.tx or "-",
            request.failures,
            request.last_error or "no answer",
            cfg.quarantine_retry,
        )


def _in_hand(ctx: FlowContext, request: Request) -> bool:
    """A fresh request not yet tried, nor accepted offline, belongs to the scan in hand:
    the engine is sending it (or will void it, or accept it offline); don't race that."""
    fresh = ctx.clock() - request.created_at < IN_HAND_S
    untried = request.attempts == 0 or not request.maybe_delivered
    return fresh and not request.offline and untried
