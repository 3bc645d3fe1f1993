"""Turn the backend's documented answers into the outcomes the counter shows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kiosk.views import Outcome

if TYPE_CHECKING:
    from kiosk.backend_client import CancelResult, ChargeResult, CheckResult

CHECK_WORDS = {
    "checked": "checked",
    "already_checked": "already_checked",
    "cancelled": "cancelled",
    "wrong_venue": "wrong_venue",
    "invalid": "invalid",
}
CHARGE_WORDS = {
    "charged": "charged",
    "insufficient_funds": "insufficient_funds",
    "paycode_used": "paycode_used",
    "paycode_expired": "paycode_expired",
    "not_eligible": "not_eligible",
    "invalid": "invalid",
}


def local(dt: datetime | None, tz: ZoneInfo) -> datetime | None:
    return dt.astimezone(tz) if dt is not None else None


def from_check(
    r: CheckResult, tz: ZoneInfo, *, venue_name: str, amount_cents: int, paid_at: datetime | None
) -> Outcome:
    word = CHECK_WORDS.get(r.status, "invalid")
    return Outcome(
        word=word,
        kind="receipt",
        tx=r.tx,
        amount_cents=r.amount_cents if r.amount_cents is not None else amount_cents,
        venue_name=r.venue_name or venue_name,
        at=local(r.paid_at, tz) or paid_at,
        checked_at=local(r.checked_at, tz),
        checked_by=r.checked_by,
        reason=r.reason if word == "invalid" else ("" if word != "cancelled" else "receipt"),
    )


def from_charge(r: ChargeResult, tz: ZoneInfo, *, service_name: str, amount_cents: int) -> Outcome:
    word = CHARGE_WORDS.get(r.status, "invalid")
    return Outcome(
        word=word,
        kind="charge",
        tx=r.tx,
        amount_cents=r.amount_cents if r.amount_cents is not None else amount_cents,
        at=local(r.charged_at, tz),
        service_name=service_name,
        balance_cents=r.balance_cents,
        reason=r.reason,
    )


def from_cancel(r: CancelResult, tx: str, amount_cents: int | None) -> Outcome:
    if r.status == "cancelled":
        return Outcome(word="cancelled", kind="cancel", tx=tx, amount_cents=amount_cents)
    return Outcome(
        word="invalid", kind="cancel", tx=tx, amount_cents=amount_cents, reason=r.reason or r.status
    )


def sync_word(kind: str, status: str) -> str:
    """The history word for a backend answer that arrived during sync."""
    if kind == "receipt":
        return CHECK_WORDS.get(status, "invalid")
    if kind == "charge":
        return CHARGE_WORDS.get(status, "invalid")
    return "cancelled" if status == "cancelled" else "invalid"
