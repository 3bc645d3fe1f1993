"""Start-up after a crash or power cut: scans sent but not recorded are recovered first.

An online scan's request is on the disk before its first byte leaves; its answer
and outcome are committed without waiting for the disk and flushed right after
the result is shown (:mod:`kiosk.journal.flush`). A power cut in between, or a
crash while the request was in flight, leaves the request marked as sent with no
outcome row, although the customer may have seen the result. Before the engine
serves anyone, :func:`resume`:

- records each such scan's outcome row with its original scan time, as the
  acceptance the customer may have seen (``checked`` for a receipt, ``charged``
  for a charge), waiting for the backend's answer;
- marks every request of the earlier run as possibly delivered (resend only);
- re-sends each of those requests with its original key: the backend replays its
  first answer, which settles the request and gives the outcome row its word.

A rescan of such a receipt then finds the row and is answered "already accepted
here at HH:MM" (:mod:`kiosk.flows.known`), never a fresh
acceptance of the backend's replayed answer. When the backend cannot be reached
at start-up the row waits, and the sync worker's upload settles it later.
"""

from __future__ import annotations

import logging

from kiosk.amounts import paid_for
from kiosk.errors import BackendError
from kiosk.flows.context import FlowContext
from kiosk.flows.payment import service_named
from kiosk.flows.receipt import priced
from kiosk.journal import Request
from kiosk.views import Outcome
from kiosk.vocabulary import RequestKind, Word

log = logging.getLogger("kiosk.recovery")

__all__ = ["resume"]


def resume(ctx: FlowContext) -> list[Request]:
    """Recover the earlier run's unrecorded scans (engine thread, before serving).

    Returns the requests recovered. Raises JournalError; a backend that gives no
    answer leaves the requests to the sync worker.
    """
    journal = ctx.journal
    ctx.venue.load(journal)  # the price list of a recovered receipt's row
    with journal.transaction():
        unreported = journal.sent_unreported()
        for request in unreported:
            _record_waiting(ctx, request)
        left = journal.distrust_unanswered()
    if left:
        log.info("%d request(s) of the last run may have been sent: resend as is", left)
    for request in unreported:
        log.warning(
            "%s request %d (tx %s) was sent before the last stop without its outcome"
            " stored: re-sending it with its key",
            request.kind,
            request.id,
            request.tx or "-",
        )
        try:
            ctx.send(request, deadline=ctx.scan_deadline())
        except BackendError as exc:
            log.warning("request %d: no answer yet (%s); the sync worker retries", request.id, exc)
    return unreported


def _record_waiting(ctx: FlowContext, request: Request) -> None:
    """The outcome the customer may have seen, dated at the scan, waiting for the answer."""
    if request.kind == RequestKind.RECEIPT:
        word = Word.CHECKED
        outcome = priced(ctx, Outcome(word, request.kind, request.tx, request.amount_cents))
    else:
        word = Word.CHARGED
        service_id = str(request.body.get("service", ""))
        known = service_named(ctx, service_id)
        name = known.name if known is not None else service_id
        outcome = Outcome(word, request.kind, request.tx, request.amount_cents, service_name=name)
    service, amount_check, difference = paid_for(outcome)
    ctx.journal.record(
        request.kind,
        word,
        tx=request.tx,
        amount_cents=request.amount_cents,
        request_id=request.id,
        synced=False,
        shown_accepted=True,
        now=request.created_at,
        service=service,
        amount_check=amount_check,
        amount_difference_cents=difference,
    )
