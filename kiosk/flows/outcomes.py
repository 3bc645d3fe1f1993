"""Turn the backend's documented answers into the outcomes the counter shows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, assert_never
from zoneinfo import ZoneInfo

from kiosk.tokens import Unrecognised
from kiosk.views import Outcome
from kiosk.vocabulary import (
    RequestKind,
    TokenKind,
    Word,
    cancel_word,
    charge_word,
    check_word,
    request_for,
)

if TYPE_CHECKING:
    from kiosk.backend.client import CancelResult, ChargeResult, CheckResult


def local(dt: datetime | None, tz: ZoneInfo) -> datetime | None:
    return dt.astimezone(tz) if dt is not None else None


def from_check(
    r: CheckResult,
    tz: ZoneInfo,
    *,
    venue_name: str,
    amount_cents: int,
    paid_at: datetime | None,
    tx: str | None = None,
) -> Outcome:
    """The outcome of a check answer; *tx* (the scanned receipt's) where the answer names none."""
    word = check_word(r.status)
    return Outcome(
        word=word,
        kind=RequestKind.RECEIPT,
        tx=r.tx or tx,
        amount_cents=r.amount_cents if r.amount_cents is not None else amount_cents,
        venue_name=r.venue_name or venue_name,
        at=local(r.paid_at, tz) or paid_at,
        checked_at=local(r.checked_at, tz),
        checked_by=r.checked_by,
        reason=r.reason if word == Word.INVALID else ("" if word != Word.CANCELLED else "receipt"),
    )


def from_charge(r: ChargeResult, tz: ZoneInfo, *, service_name: str, amount_cents: int) -> Outcome:
    word = charge_word(r.status)
    return Outcome(
        word=word,
        kind=RequestKind.CHARGE,
        tx=r.tx,
        amount_cents=r.amount_cents if r.amount_cents is not None else amount_cents,
        at=local(r.charged_at, tz),
        service_name=service_name,
        balance_cents=r.balance_cents,
        reason=r.reason,
    )


def from_cancel(r: CancelResult, tx: str, amount_cents: int | None) -> Outcome:
    word = cancel_word(r.status)
    reason = "" if word == Word.CANCELLED else (r.reason or r.status)
    return Outcome(word, RequestKind.CANCEL, tx=tx, amount_cents=amount_cents, reason=reason)


UNREADABLE_KIND = RequestKind.RECEIPT
"""The kind journaled for a scan that claimed no token kind (not a token, a bad header, a
scanner fault): history's ``kind`` is ``receipt`` or ``charge``, and such a scan is shown
as a receipt check that failed."""


def refusal(scanned: Unrecognised) -> tuple[Word, RequestKind]:
    """The outcome of a scan that is no usable token: an expired paycode, else invalid;
    journaled as the request the token claimed to make (:data:`UNREADABLE_KIND` when
    it claimed none)."""
    kind = scanned.kind
    match kind:
        case TokenKind.PAYCODE if scanned.reason == "expired":
            return Word.PAYCODE_EXPIRED, request_for(kind)
        case TokenKind.PAYCODE | TokenKind.RECEIPT:
            return Word.INVALID, request_for(kind)
        case None:
            return Word.INVALID, UNREADABLE_KIND
        case _:
            assert_never(kind)
