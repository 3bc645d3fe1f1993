"""Send one journaled request until the backend gives a definite answer.

Shared by the engine (a scan in hand), the sync worker and ``kiosk sync``, so
that every path re-sends the journal row verbatim: same Idempotency-Key, same
body. A request is marked as attempted in the journal before it is sent, and a
definite answer is settled there before it is returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeAlias, assert_never

from kiosk.clock import BootClock, BootTime, boot_time
from kiosk.errors import (
    BackendAuthError,
    BackendBusy,
    BackendError,
    BackendProtocolError,
    BackendUnreachable,
    OutcomeUnknown,
)
from kiosk.flows.health import Reachability
from kiosk.journal import Journal, Request
from kiosk.vocabulary import RequestKind, answer_word

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient, CancelResult, ChargeResult, CheckResult

    Result: TypeAlias = CheckResult | ChargeResult | CancelResult

log = logging.getLogger("kiosk.delivery")

MAX_BACKOFF_S = 60.0


def deliver(
    client: BackendClient,
    journal: Journal,
    request: Request,
    *,
    health: Reachability,
    deadline: float,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_success: Callable[[], None] | None = None,
    answered: Callable[[Result], None] | None = None,
    durable: bool = True,
    clock: Callable[[], float] = time.time,
    boot: BootClock = boot_time,
) -> Result:
    """Send *request*, retrying an unknown outcome with the same key until *deadline*.

    The request is durably marked as attempted before its first byte leaves
    (unless :meth:`Journal.begin` marked it already); the mark is taken back only
    on proof that nothing left. The answer is settled, and *on_success* and
    *answered* (the outcome of a scan, the last-sync time) written, in one
    commit before it is returned; with *durable* false that commit does not wait for
    the disk (the caller has the journal flushed once the result is shown: a resend
    under the same key gets the same answer back). Raises BackendUnreachable when nothing was
    delivered (no retry: the caller decides about offline), OutcomeUnknown when
    the request may have arrived but no answer came before the deadline, and
    BackendAuthError when the kiosk's credentials are refused. The answer is settled
    at *clock* and *boot* (the boot-time clock: when a conflict was recorded).
    """
    before = request.maybe_delivered
    if not before and not request.marked:
        journal.mark_sending([request.id])
    attempt = 0
    while True:
        attempt += 1
        try:
            # A deadline already past (a single attempt) leaves the client's own timeouts.
            remaining = deadline - monotonic()
            result = send_once(client, request, within=remaining if remaining > 0 else None)
        except BackendAuthError:
            health.failure()
            raise
        except BackendUnreachable as exc:
            journal.attempted(request.id, str(exc), maybe_delivered=False, before=before)
            health.failure()
            raise
        except BackendBusy as exc:
            # A 429: answered, and nothing processed. Not "maybe delivered"; send again.
            journal.attempted(request.id, str(exc), maybe_delivered=False, before=before)
            wait = backoff(attempt, exc.retry_after)
            if monotonic() + wait >= deadline:
                raise
            log.info("retrying %s request %d in %.1f s: %s", request.kind, request.id, wait, exc)
            sleep(wait)
            continue
        except BackendError as exc:
            # Timeouts, dropped connections, 5xx, in_progress and answers outside
            # the contract: the request may have been processed. Same key only, from now on.
            before = True
            retry_after = exc.retry_after if isinstance(exc, OutcomeUnknown) else None
            journal.attempted(request.id, str(exc), maybe_delivered=True)
            health.failure(timed_out=isinstance(exc, OutcomeUnknown))
            wait = backoff(attempt, retry_after)
            if monotonic() + wait >= deadline:
                if isinstance(exc, OutcomeUnknown):
                    raise
                raise OutcomeUnknown(str(exc), retry_after=retry_after) from exc
            log.info("retrying %s request %d in %.1f s: %s", request.kind, request.id, wait, exc)
            sleep(wait)
            continue
        health.success()
        with journal.transaction(durable=durable):
            settle(journal, request, result, now=clock(), boot=boot())
            if on_success is not None:
                on_success()
            if answered is not None:
                answered(result)
        return result


def settle(
    journal: Journal, request: Request, result: Result, *, now: float, boot: BootTime | None
) -> bool:
    """Write the backend's definite answer to *request* at wall time *now* and boot-time
    reading *boot* (joins an open transaction)."""
    return journal.settle(
        request.id,
        result.status,
        result.http_status,
        _jsonable(result),
        word=answer_word(request.kind, result.status),
        tx=result.tx,
        now=now,
        boot=boot,
    )


def send_once(client: BackendClient, request: Request, *, within: float | None = None) -> Result:
    """One attempt with the journaled text, through the client's method for its kind.

    The attempt (token fetch included) ends within *within* seconds when given: a
    scan's deadline bounds every exchange, not only the waits between them.
    """
    kind = request.kind
    match kind:
        case RequestKind.RECEIPT:
            return client.check_receipt(request.key, request.text, within=within)
        case RequestKind.CHARGE:
            return client.charge(request.key, request.text, within=within)
        case RequestKind.CANCEL:
            if request.tx is None:
                raise BackendProtocolError(f"cancel request {request.id} names no transaction")
            return client.cancel(request.tx, request.key, request.text, within=within)
        case _:
            assert_never(kind)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt *attempt* + 1: bounded exponential, Retry-After wins."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_BACKOFF_S)
    return min(0.2 * (2 ** (attempt - 1)), MAX_BACKOFF_S)


def _jsonable(result: Any) -> dict[str, Any]:
    """The answer's fields for the journal, times as ISO text. Answers are flat (text,
    numbers, times), so no deep copy (``dataclasses.asdict``) is needed."""
    out = {f.name: getattr(result, f.name) for f in fields(result)}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}
