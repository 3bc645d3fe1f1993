"""The day report: the studio's figures for a period, from the rows the settlement CSV lists.

``kiosk history --local --summary`` and the staff's report screen on the device
both read :func:`period_rows` (every outcome row of the period, none left out) and
add them up with :func:`figures`; ``history --local --csv`` lists the same rows,
so the report and the CSV agree by construction. What a row adds to the money is
:func:`kiosk.journal.money.money_cents`: one row of money per transaction.

- ``receipts``: checked receipts, online and offline (``offline`` of them);
- ``charges``: charged payment codes;
- ``cancels``: transactions cancelled from this device (their amounts, positive);
- ``total_cents``: receipts + charges - cancels;
- ``services``: transactions of the period not cancelled, per service, where the
  service is known for sure (a charge, or a receipt whose amount matched the price
  list); ``unmatched``: the other receipts;
- ``waiting_upload``: offline acceptances the backend has not seen yet;
- ``conflicts``: offline acceptances the backend found used (not money here);
- ``late_answers``: acceptances the customer was shown ``needs_network`` for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from kiosk.errors import JournalError
from kiosk.journal import Journal, OutcomeRow
from kiosk.journal.money import late_answer, money_cents
from kiosk.journal.schema import outcome_row, translated
from kiosk.vocabulary import AmountCheck, RequestKind, Word

__all__ = [
    "Count",
    "DayFigures",
    "IncompletePeriod",
    "check_complete",
    "figures",
    "local_midnight",
    "period_rows",
]


@dataclass(frozen=True)
class Count:
    """How many, and how much (cents)."""

    count: int = 0
    cents: int = 0

    def plus(self, cents: int) -> Count:
        return Count(self.count + 1, self.cents + cents)

    def as_json(self) -> dict[str, int]:
        return {"count": self.count, "cents": self.cents}


@dataclass(frozen=True)
class DayFigures:
    """The day report's figures (see the module docstring)."""

    receipts: Count = Count()
    offline: Count = Count()
    charges: Count = Count()
    cancels: Count = Count()
    services: tuple[tuple[str, Count], ...] = ()
    unmatched: Count = Count()
    waiting_upload: Count = Count()
    conflicts: Count = Count()
    late_answers: Count = Count()
    rows: int = 0

    @property
    def total_cents(self) -> int:
        return self.receipts.cents + self.charges.cents - self.cancels.cents

    def as_json(self) -> dict[str, Any]:
        return {
            "receipts": dict(self.receipts.as_json(), offline=self.offline.as_json()),
            "charges": self.charges.as_json(),
            "cancels": self.cancels.as_json(),
            "total_cents": self.total_cents,
            "services": [dict(c.as_json(), service=name) for name, c in self.services],
            "unmatched": self.unmatched.as_json(),
            "waiting_upload": self.waiting_upload.as_json(),
            "conflicts": self.conflicts.as_json(),
            "late_answers": self.late_answers.as_json(),
            "rows": self.rows,
        }


class IncompletePeriod(JournalError):
    """The journal no longer holds every row of the period asked for (pruned)."""


def check_complete(journal: Journal, since: float, *, now: float, retention_days: int) -> None:
    """Raise IncompletePeriod when rows from *since* on may have been pruned."""
    kept_from = now - retention_days * 86400
    with translated():
        pruned = journal.conn.execute("SELECT COUNT(*) FROM pruned_outcomes").fetchone()[0]
    if since < kept_from and pruned:
        raise IncompletePeriod(
            f"the journal keeps {retention_days} days of scans and older ones were pruned;"
            " for a period before that use the backend's history (kiosk history --csv)"
        )


def period_rows(
    journal: Journal, since: float, *, now: float, retention_days: int
) -> list[OutcomeRow]:
    """Every outcome row from *since* on, oldest first; nothing is left out.

    Raises IncompletePeriod when rows of the period may have been pruned (older
    than ``[journal] retention_days``), and JournalError when the journal cannot be read.
    """
    check_complete(journal, since, now=now, retention_days=retention_days)
    with translated():
        rows = journal.conn.execute(
            "SELECT * FROM outcomes WHERE at >= ? ORDER BY at, id", (since,)
        ).fetchall()
    return [outcome_row(r) for r in rows]


def figures(rows: Iterable[OutcomeRow]) -> DayFigures:
    """Add up *rows* (those of one period) into the day report's figures."""
    rows = list(rows)
    cancelled = {r.tx for r in rows if r.kind == RequestKind.CANCEL and r.outcome == Word.CANCELLED}
    counts: dict[str, Count] = {}
    services: dict[str, Count] = {}
    for row in rows:
        cents = money_cents(row)
        for name in _buckets(row, cents):
            counts[name] = counts.get(name, Count()).plus(abs(cents) or (row.amount_cents or 0))
        if cents > 0 and row.tx not in cancelled:
            if _service_known(row):
                services[row.service] = services.get(row.service, Count()).plus(cents)
            else:
                counts["unmatched"] = counts.get("unmatched", Count()).plus(cents)
    return DayFigures(
        **{name: counts.get(name, Count()) for name in _COUNTED},
        services=tuple(sorted(services.items())),
        unmatched=counts.get("unmatched", Count()),
        rows=len(rows),
    )


_COUNTED = (
    "receipts",
    "offline",
    "charges",
    "cancels",
    "waiting_upload",
    "conflicts",
    "late_answers",
)


def _buckets(row: OutcomeRow, cents: int) -> list[str]:
    """The figures *row* counts in (besides the per-service table)."""
    out: list[str] = []
    kind = row.kind
    match kind:
        case RequestKind.RECEIPT:
            if cents > 0:
                out.append("receipts")
                if row.outcome == Word.CHECKED_OFFLINE:
                    out += ["offline"] if row.synced else ["offline", "waiting_upload"]
        case RequestKind.CHARGE:
            if cents > 0:
                out.append("charges")
        case RequestKind.CANCEL:
            if cents < 0:
                out.append("cancels")
        case _:
            assert_never(kind)
    if row.outcome == Word.CONFLICT:
        out.append("conflicts")
    if late_answer(row):
        out.append("late_answers")
    return out


def _service_known(row: OutcomeRow) -> bool:
    """True when the row's service is certain: a charge's, a receipt's matched price."""
    if not row.service:
        return False
    kind = row.kind
    match kind:
        case RequestKind.CHARGE:
            return True
        case RequestKind.RECEIPT:
            return row.amount_check == AmountCheck.OK
        case RequestKind.CANCEL:
            return False
        case _:
            assert_never(kind)


def local_midnight(now: float, tz: Any) -> float:
    """Unix time of the start of *now*'s day in *tz* (a ZoneInfo)."""
    day = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()
