"""Receipt flow: verify locally, check at the backend exactly once, or accept offline.

Engine thread only. Every path journals before it sends and records the
outcome before returning it (the screen shows it afterwards).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from kiosk.amounts import match_amount
from kiosk.backend import bodies
from kiosk.errors import BackendAuthError, BackendError, BackendUnreachable
from kiosk.flows.context import FlowContext
from kiosk.flows.known import known_outcome
from kiosk.flows.outcomes import from_check
from kiosk.journal import Request
from kiosk.tokens import Receipt
from kiosk.views import Outcome
from kiosk.vocabulary import RequestKind, RequestState, ResultScreen, Word, meaning

log = logging.getLogger("kiosk.receipt")


def check_receipt(ctx: FlowContext, receipt: Receipt) -> Outcome:
    """Decide one scanned, signature-verified receipt. Raises JournalError only."""
    cfg = ctx.cfg
    paid_at = datetime.fromtimestamp(receipt.paid_at, ctx.tz)
    if receipt.venue != cfg.device.venue:
        return ctx.record(
            Outcome(
                Word.WRONG_VENUE,
                RequestKind.RECEIPT,
                receipt.tx,
                receipt.amount_cents,
                receipt.venue_name,
                paid_at,
            )
        )

    known = known_outcome(ctx, receipt, paid_at)
    if known is not None:
        return known  # spent, void or served here: decided without the backend

    request = ctx.journal.last_request_for(RequestKind.RECEIPT, receipt.tx)
    if (
        request is not None
        and request.state == RequestState.DONE
        and request.status == Word.CHECKED
    ):
        # Our own key checked it, but the customer was never shown the acceptance
        # (the answer arrived after the counter had given up): accept now.
        outcome = Outcome(
            Word.CHECKED,
            RequestKind.RECEIPT,
            receipt.tx,
            receipt.amount_cents,
            receipt.venue_name,
            paid_at,
        )
        return ctx.record(priced(ctx, outcome), request.id, shown=True)
    known_offline = ctx.health.offline  # read once: the sync worker may change it meanwhile
    if request is None or not request.open:
        ctx.require_space()
        body = bodies.receipt_check(
            receipt.token,
            venue=cfg.device.venue,
            device=cfg.device.id,
            scanned_at=datetime.fromtimestamp(ctx.clock(), UTC),
        )
        request = ctx.journal.begin(
            RequestKind.RECEIPT,
            body,
            tx=receipt.tx,
            amount_cents=receipt.amount_cents,
            sending=not known_offline,  # marked as attempted in the same commit
            now=ctx.clock(),
        )

    if known_offline and not request.maybe_delivered and not request.marked:
        refusal = _refusal(ctx, receipt)
        if refusal is None:
            # Known outage and within the limits: answer at once instead of waiting for
            # a connect timeout. Beyond the limits, trying the network costs nothing.
            return _offline(ctx, request, receipt, paid_at, None)
    try:
        # The answer, its outcome and the last-sync time are written in one commit.
        return ctx.answer(
            request,
            lambda result: priced(
                ctx,
                from_check(
                    result,
                    ctx.tz,
                    venue_name=receipt.venue_name,
                    amount_cents=receipt.amount_cents,
                    paid_at=paid_at,
                    tx=receipt.tx,
                ),
            ),
        )
    except BackendAuthError as exc:
        log.error("backend refused the kiosk's credentials: %s", exc)
        return _offline(
            ctx, ctx.journal.request(request.id), receipt, paid_at, _refusal(ctx, receipt)
        )
    except BackendUnreachable:
        return _offline(
            ctx, ctx.journal.request(request.id), receipt, paid_at, _refusal(ctx, receipt)
        )
    except BackendError as exc:
        log.warning("receipt %s: no answer from the backend (%s)", receipt.tx, exc)
        return _offline(
            ctx, ctx.journal.request(request.id), receipt, paid_at, _refusal(ctx, receipt)
        )


def priced(ctx: FlowContext, outcome: Outcome) -> Outcome:
    """A checked receipt with its amount against the venue's cached price list.

    Only the cache is read (kept fresh by the sync worker; offline it is the last
    list fetched), so the check costs no network time. Without a price list, with
    ``[counter] amount_check = "off"`` or for any other outcome: unchanged.
    """
    if (
        ctx.cfg.counter.amount_check != "warn"
        or meaning(outcome.word).screen is not ResultScreen.RECEIPT_ACCEPTED
        or outcome.amount_cents is None
    ):
        return outcome
    return replace(outcome, amount_match=match_amount(outcome.amount_cents, ctx.venue.services))


def _refusal(ctx: FlowContext, receipt: Receipt) -> str | None:
    refusal = ctx.offline_refusal(receipt.amount_cents)
    if refusal is None and ctx.journal.moved_aside is not None:
        refusal = "journal"  # the offline record of this device was lost: take no risk
    return refusal


def _offline(
    ctx: FlowContext, request: Request, receipt: Receipt, paid_at: datetime, refusal: str | None
) -> Outcome:
    """The backend gave no answer: accept within the offline limits, else refuse."""
    if refusal is not None:
        if not request.maybe_delivered:
            ctx.journal.void(request.id, refusal)
        # A request that may have arrived stays pending: the sync worker learns its answer.
        outcome = Outcome(
            Word.NEEDS_NETWORK,
            RequestKind.RECEIPT,
            receipt.tx,
            receipt.amount_cents,
            receipt.venue_name,
            paid_at,
            reason=refusal,
        )
        rid = None if not request.maybe_delivered else request.id
        return ctx.record(outcome, rid, synced=rid is None)
    if not request.maybe_delivered:
        ctx.journal.go_offline(request.id, bodies.went_offline(request.body))
    outcome = priced(
        ctx,
        Outcome(
            Word.CHECKED_OFFLINE,
            RequestKind.RECEIPT,
            receipt.tx,
            receipt.amount_cents,
            receipt.venue_name,
            paid_at,
        ),
    )
    ctx.record(outcome, request.id, synced=False, shown=True)
    ctx.wake_sync()
    log.info("receipt %s accepted offline", receipt.tx)
    return outcome
