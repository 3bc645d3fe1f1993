"""Upload what the journal still owes the backend, exactly once, none stuck behind another.

``sync_once`` is what ``kiosk sync`` runs; :class:`~kiosk.flows.sync_worker.SyncWorker` runs
it in the background of ``kiosk run``.

A round sends the open requests oldest first in windows (1, 2, 4, ... up to
:data:`WINDOW_MAX`), a few in flight at once (:class:`~kiosk.flows.upload_pool.UploadPool`).
While a window is in flight, one durable commit writes the answers of the window
before it and marks the next window as attempted, so the flush overlaps the
network and the next window leaves as soon as this one is answered: one commit
per window. Answers may wait for the disk that long (a crash or power cut before
is harmless: the resend under the same key gets the answer replayed); the round's
end flushes the last ones. A window marked ahead that is not sent (no answer, the
backend failing) has its mark taken back in the commit that settles the window
before it. A cancel waits for its transaction's check or charge.

A request without an answer is backed off on its own (``next_try_at``) and the
round goes on with the next one: no request, however often it fails, holds back
another. Whether a failure was the request's own or the backend's is told by the
backend itself: an answer to another request in the same round, or else a probe
(``GET /v1/venues/{venue}``, after :data:`DRY_WINDOWS` windows without an answer
and at the end of a round), shows that the backend is up, and every failure seen
since counts against its request. After ``journal.quarantine_after`` such failures
a request is quarantined: kept, retried every ``journal.quarantine_retry`` seconds,
counted by ``kiosk status`` and the technician screen.

The backend is failing as a whole, the round stops and the counter is told it is
offline (:class:`~kiosk.flows.health.Reachability`) only when nothing can be
delivered (connection refused, credentials refused) or when the probe gets no
answer either; then no failure of the round counts against its request. One
request failing never marks the backend offline.

Both the engine and the upload thread re-send journal rows verbatim, so a request
sent twice is answered once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.errors import (
    BackendAuthError,
    BackendBusy,
    BackendError,
    BackendUnreachable,
    OutcomeUnknown,
)
from kiosk.flows.context import FlowContext
from kiosk.flows.delivery import backoff, settle
from kiosk.flows.upload_pool import Answer, UploadPool
from kiosk.journal import Request
from kiosk.vocabulary import RequestKind, RequestState

log = logging.getLogger("kiosk.sync")

IN_HAND_S = 30.0
WINDOW_MAX = 64
DRY_WINDOWS = 3  # windows in a row without any answer: ask the backend whether it is up


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
    uncounted: list[int] = field(default_factory=list)  # failures since the backend was seen up
    last: BackendError | None = None  # the latest failure of a request
    error: BackendError | None = None  # why the round stopped: the backend failed as a whole


def sync_once(
    ctx: FlowContext,
    *,
    progress: Callable[[], None] | None = None,
    everything: bool = False,
    pipeline: UploadPool | None = None,
) -> SyncReport:
    """Send the open requests that are due (every open one if *everything*, as
    ``kiosk sync`` does), each at most once, oldest first.

    *progress* is called before each window (the worker's heartbeat); *pipeline*
    is reused between calls (one is made and closed here if not given).
    """
    conflicts_before = len(ctx.journal.conflicts())
    state = _Round(everything)
    pipe = pipeline if pipeline is not None else UploadPool(ctx.client)
    try:
        _run(ctx, state, pipe, progress)
    finally:
        if pipeline is None:
            pipe.close()
        if state.uploaded or state.failed:
            ctx.journal.flush()  # the last window's answers and failures
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
    ctx: FlowContext, state: _Round, pipe: UploadPool, progress: Callable[[], None] | None
) -> None:
    size, dry, settled_since_sweep = 1, 0, False
    batch: list[Request] = []  # the window to send next, marked as attempted already
    unsettled: list[Answer] = []  # answers of the last window, not yet written
    while True:
        if not batch:
            if unsettled:
                _settle(ctx, state, unsettled)
                unsettled = []
            batch = _batch(ctx, state, size)
            if not batch:
                if state.deferred and settled_since_sweep:  # a cancel's check may be done now
                    state.after, state.deferred, settled_since_sweep = 0, False, False
                    continue
                if state.uncounted:  # were the last failures the requests' own?
                    _backend_up(ctx, state)
                return
            marks = _unmarked(batch)
            if marks:
                ctx.journal.mark_sending(marks)
        if progress is not None:
            progress()
        flight = pipe.start(batch)
        # While the window is in flight, one commit writes the last window's answers and
        # marks the next window as attempted (durably: its first byte leaves right after
        # this window's answers are in). A backend that answers gets the next window at once.
        ahead = _batch(ctx, state, min(size * 2, WINDOW_MAX)) if dry == 0 else []
        if unsettled or ahead:
            _settle(ctx, state, unsettled, mark=_unmarked(ahead))
            unsettled = []
        answers = flight.answers()
        if _answered(answers) and not _stops(answers):
            unsettled, batch = answers, ahead
            size, dry, settled_since_sweep = min(size * 2, WINDOW_MAX), 0, True
            continue
        # No answer, or the backend failed as a whole: the window marked ahead stays unsent.
        answered, stop = _settle(ctx, state, answers, unmark=_unmarked(ahead))
        _put_back(state, ahead)
        batch = []
        if stop:
            return
        if answered:
            size, dry, settled_since_sweep = min(size * 2, WINDOW_MAX), 0, True
            continue
        dry += 1
        if dry < DRY_WINDOWS:
            size = 1  # go easy on a backend that may be failing
            continue
        if not _backend_up(ctx, state):
            return
        # Up, so these requests fail on their own: try the next ones a few at once.
        size, dry = pipe.width, 0


def _unmarked(batch: list[Request]) -> list[int]:
    """The requests of *batch* not yet marked as attempted."""
    return [r.id for r in batch if not r.maybe_delivered]


def _answered(answers: list[Answer]) -> int:
    return sum(1 for _, answer in answers if not isinstance(answer, BackendError))


def _stops(answers: list[Answer]) -> bool:
    """Nothing reached the backend, or it refused the kiosk as a whole: the round ends."""
    return any(isinstance(a, BackendAuthError | BackendUnreachable) for _, a in answers)


def _put_back(state: _Round, ahead: list[Request]) -> None:
    """A window chosen ahead but never sent: its requests are the round's to send again."""
    if not ahead:
        return
    for request in ahead:
        state.tried.discard(request.id)
    state.after = min(state.after, min(r.id for r in ahead) - 1)


def _backend_up(ctx: FlowContext, state: _Round) -> bool:
    """Ask the backend for the venue: an answer makes the round's uncounted failures the
    requests' own (counted now); none means the backend is failing as a whole, so the
    round stops, counts nothing and the counter is told it is offline."""
    try:
        ctx.client.get_venue(ctx.cfg.device.venue)
    except BackendError as exc:
        log.info("backend probe failed too: %s", exc)
        state.error = state.last if state.last is not None else exc
        state.uncounted.clear()
        timed_out = isinstance(exc, OutcomeUnknown) or isinstance(state.last, OutcomeUnknown)
        ctx.health.failure(timed_out=timed_out)
        return False
    ctx.health.success()
    if state.uncounted:
        ctx.journal.count_failures(state.uncounted)
        state.uncounted.clear()
    return True


def _batch(ctx: FlowContext, state: _Round, size: int) -> list[Request]:
    """The next *size* due requests, in order, without a cancel whose check is open."""
    waiting = ctx.journal.waiting_txs()
    out: list[Request] = []
    while len(out) < size:
        page = ctx.journal.due_requests(
            ctx.clock(),
            boot=ctx.boot(),
            everything=state.everything,
            after=state.after,
            limit=size + 16,
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


def _settle(
    ctx: FlowContext,
    state: _Round,
    answers: list[Answer],
    *,
    mark: list[int] | None = None,
    unmark: list[int] | None = None,
) -> tuple[int, bool]:
    """Write a window's answers and failures in one commit; (answers, stop the round).

    The same commit marks the requests *mark* as attempted (the next window, sent once it
    is on the disk), or takes the mark of *unmark* back (marked ahead, never sent).
    """
    now, boot = ctx.clock(), ctx.boot()
    retry_s = ctx.cfg.journal.quarantine_retry
    answered, stop = 0, False
    # Answers are what a resend under the same key gets back: their commit waits for the
    # disk only when it marks the next window; otherwise the next mark or the round's end
    # flushes it.
    with ctx.journal.transaction(durable=bool(mark)):
        if mark:
            ctx.journal.mark_sending(mark)
        if unmark:
            ctx.journal.unmark_unsent(unmark)
        for request, answer in answers:
            if not isinstance(answer, BackendError):
                settle(ctx.journal, request, answer, now=now, boot=boot)
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
                    boot=boot,
                )
                continue
            busy = isinstance(answer, BackendBusy)  # a 429: nothing was processed
            retry_after = (
                answer.retry_after if isinstance(answer, OutcomeUnknown | BackendBusy) else None
            )
            wait = (
                retry_s
                if request.state == RequestState.QUARANTINED
                else backoff(min(request.attempts + 1, 16), retry_after)
            )
            ctx.journal.upload_failed(
                request.id,
                str(answer),
                maybe_delivered=not busy,
                before=request.maybe_delivered if busy else True,
                counted=False,  # until the backend shows it is up (see _backend_up)
                retry_at=now + wait,
                wait_s=wait,
                boot=boot,
            )
            state.uncounted.append(request.id)
            state.last = answer
            log.info("%s request %d: no answer (%s); next try in %.0f s",
                     request.kind, request.id, answer, wait)  # fmt: skip
        if answered:
            ctx.mark_synced()
            if state.uncounted:  # others got through: these failures were their own
                ctx.journal.count_failures(state.uncounted)
                state.uncounted.clear()
    if answered:
        ctx.health.success()
        state.uploaded += answered
    elif stop:
        ctx.health.failure()
    return answered, stop


def _tally_failures(ctx: FlowContext, state: _Round) -> None:
    """Quarantine the requests whose own failures reached ``journal.quarantine_after``."""
    if not state.failed:
        return
    cfg = ctx.cfg.journal
    for request in ctx.journal.quarantine_due(
        cfg.quarantine_after,
        ctx.clock() + cfg.quarantine_retry,
        cfg.quarantine_retry,
        ctx.boot(),
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
