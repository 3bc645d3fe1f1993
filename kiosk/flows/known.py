"""What the journal already knows about a receipt: a rescan is answered from it.

A receipt's fate, once the kiosk has been told it, does not change: accepted at
this counter, cancelled, or refused for good by the backend (checked elsewhere,
cancelled, another venue's, invalid). A later scan of it is decided here, online
or offline, without sending anything: the offline rules must never accept a
receipt the kiosk knows is spent. The outcome says what the kiosk was told and,
in ``told_at``, when.

Engine thread only; every function raises JournalError only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, assert_never

from kiosk.backend._wire import CheckResult
from kiosk.flows.context import FlowContext
from kiosk.flows.outcomes import from_check
from kiosk.journal import Request
from kiosk.journal.schema import request_row, translated
from kiosk.tokens import Receipt
from kiosk.views import Outcome
from kiosk.vocabulary import (
    CancelStatus,
    CheckStatus,
    RequestKind,
    RequestState,
    Word,
)

_TIMES = ("paid_at", "checked_at")


def final_refusal(status: CheckStatus) -> bool:
    """True for a check answer that refuses the receipt for good (it is spent or void)."""
    match status:
        case CheckStatus.CHECKED:
            return False
        case (
            CheckStatus.ALREADY_CHECKED
            | CheckStatus.CANCELLED
            | CheckStatus.WRONG_VENUE
            | CheckStatus.INVALID
        ):
            return True
        case _:
            assert_never(status)


def known_outcome(ctx: FlowContext, receipt: Receipt, paid_at: datetime) -> Outcome | None:
    """The journaled answer to a rescan of *receipt*, or None when the backend must decide.

    In order: cancelled by this kiosk; accepted at this counter (``already_checked``
    by this device); refused for good by the backend earlier. Records the outcome.
    """
    tx = receipt.tx
    cancel = _answered(ctx, RequestKind.CANCEL, tx, _cancelled)
    if cancel is not None:
        return ctx.record(
            Outcome(
                Word.CANCELLED,
                RequestKind.RECEIPT,
                tx,
                receipt.amount_cents,
                receipt.venue_name,
                paid_at,
                reason="local",
                told_at=_local(ctx, cancel.settled_at),
            )
        )
    for row in reversed(ctx.journal.receipt_history(tx)):
        if row.shown_accepted:  # the customer was served here (a conflict too)
            return ctx.record(
                Outcome(
                    Word.ALREADY_CHECKED,
                    RequestKind.RECEIPT,
                    tx,
                    receipt.amount_cents,
                    receipt.venue_name,
                    paid_at,
                    checked_at=datetime.fromtimestamp(row.at, ctx.tz),
                    checked_by=ctx.cfg.device.id,
                    reason="local",
                )
            )
    refused = _answered(ctx, RequestKind.RECEIPT, tx, _refused_for_good)
    if refused is None:
        return None
    told = _stored_check(refused)
    outcome = from_check(
        told,
        ctx.tz,
        venue_name=receipt.venue_name,
        amount_cents=receipt.amount_cents,
        paid_at=paid_at,
        tx=tx,
    )
    return ctx.record(replace(outcome, told_at=_local(ctx, refused.settled_at)))


def _cancelled(request: Request) -> bool:
    """A cancel that went through, or one refused because the payment was cancelled already."""
    if request.status == CancelStatus.CANCELLED:
        return True
    reason = (request.response or {}).get("reason")
    return request.status == CancelStatus.NOT_CANCELLABLE and reason == "already_cancelled"


def _refused_for_good(request: Request) -> bool:
    try:
        return final_refusal(CheckStatus(request.status or ""))
    except ValueError:
        return False


def _answered(ctx: FlowContext, kind: RequestKind, tx: str, wanted: Any) -> Request | None:
    """The newest answered request of *kind* for *tx* that *wanted* accepts."""
    with translated():
        rows = ctx.journal.conn.execute(
            "SELECT * FROM requests WHERE kind = ? AND tx = ? AND state = ? ORDER BY id DESC",
            (kind, tx, RequestState.DONE),
        ).fetchall()
    for row in rows:
        request = request_row(row)
        if wanted(request):
            return request
    return None


def _stored_check(request: Request) -> CheckResult:
    """The backend's answer as it was journaled (see kiosk.flows.delivery.settle)."""
    stored = dict(request.response or {})
    fields = {k: v for k, v in stored.items() if k in CheckResult.__dataclass_fields__}
    for name in _TIMES:
        value = fields.get(name)
        fields[name] = _parse(value) if isinstance(value, str) else None
    fields["status"] = request.status or ""
    fields.setdefault("http_status", 0)
    return CheckResult(**fields)


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _local(ctx: FlowContext, at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, ctx.tz)
