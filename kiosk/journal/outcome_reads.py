"""Reading the ``outcomes`` table: one receipt's history, a period's rows, the last
accepted payment, the offline exposure and the open conflicts.

Mixed into :class:`kiosk.journal.Journal` beside :class:`kiosk.journal.uploads.UploadBook`;
writing outcomes stays in the journal itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiosk.journal.schema import OutcomeRow, outcome_row
from kiosk.vocabulary import ACCEPTED, RequestKind, Word

if TYPE_CHECKING:
    import sqlite3

_ACCEPTED_SQL = ", ".join(f"'{w.value}'" for w in sorted(ACCEPTED))


class OutcomeReader:
    """Queries of the ``outcomes`` table."""

    if TYPE_CHECKING:

        def _query(
            self, sql: str, args: tuple[Any, ...] | dict[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

    def receipt_history(self, tx: str) -> list[OutcomeRow]:
        rows = self._query(
            "SELECT * FROM outcomes WHERE tx = ? AND kind = ? ORDER BY id",
            (tx, RequestKind.RECEIPT),
        )
        return [outcome_row(r) for r in rows]

    def outcomes(self, since: float | None = None, limit: int = 10_000) -> list[OutcomeRow]:
        rows = self._query(
            "SELECT * FROM outcomes WHERE at >= ? ORDER BY id DESC LIMIT ?",
            (since or 0.0, limit),
        )
        return [outcome_row(r) for r in rows]

    def last_accepted(self, since: float) -> OutcomeRow | None:
        """The newest checked or charged transaction since *since* (for cancel-last)."""
        rows = self._query(
            "SELECT * FROM outcomes WHERE at >= ? AND tx IS NOT NULL"
            f" AND outcome IN ({_ACCEPTED_SQL}) ORDER BY id DESC LIMIT 1",
            (since,),
        )
        return outcome_row(rows[0]) if rows else None

    def offline_exposure(self) -> tuple[int, int]:
        """(count, total cents) of receipts accepted offline and not yet uploaded."""
        rows = self._query(
            "SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM outcomes"
            " WHERE outcome = ? AND synced = 0",
            (Word.CHECKED_OFFLINE,),
        )
        return int(rows[0][0]), int(rows[0][1])

    def conflicts(self) -> list[OutcomeRow]:
        rows = self._query("SELECT * FROM outcomes WHERE outcome = ? ORDER BY id", (Word.CONFLICT,))
        return [outcome_row(r) for r in rows]
