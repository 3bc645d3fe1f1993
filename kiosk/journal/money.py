"""One transaction is one row of money: which outcome rows carry it, and keeping it so.

A request's answer may reach more than one outcome row: the customer scans again
while the answer is unknown (each scan is a row), and a late answer rewrites the
rows that waited for it (:func:`kiosk.journal.schema.resolve_waiting`). Two rules,
applied in the same commit as a new row for that request, keep one row of money:

- only the newest scan of a request waits for its answer: earlier waiting rows
  stop waiting and keep the word their customer was shown;
- when the new row shows the request's acceptance (the customer is served now), an
  earlier row that a late answer had turned into that acceptance goes back to
  ``needs_network``, which is what its customer was shown.

A **late answer** row is an acceptance the customer never saw: the backend's
answer turned the ``needs_network`` on the screen into ``checked``, ``charged`` or
(for a cancel) ``cancelled``. It is the only kind of accepted row journaled as not
shown with a reason (the refusal's), so :func:`late_answer` reads it from the row.
"""

from __future__ import annotations

import sqlite3

from kiosk.journal.schema import OutcomeRow
from kiosk.vocabulary import RequestKind, Word, accepted_word, money_sign

__all__ = ["keep_one_row_of_money", "late_answer", "money_cents"]


def late_answer(row: OutcomeRow) -> bool:
    """True for an acceptance that arrived after the customer was shown ``needs_network``."""
    return row.outcome == accepted_word(row.kind) and not row.shown_accepted and bool(row.reason)


def money_cents(row: OutcomeRow) -> int:
    """What the row adds to the day's money: its amount times
    :func:`kiosk.vocabulary.money_sign` (a payment accepted at the counter adds it, a
    cancel gone through takes it off, anything else adds nothing)."""
    return money_sign(row.outcome, row.kind) * (row.amount_cents or 0)


def keep_one_row_of_money(
    conn: sqlite3.Connection, request_id: int, kind: RequestKind, word: Word
) -> None:
    """Before a new row of *word* for *request_id* is inserted (same transaction)."""
    conn.execute(
        "UPDATE outcomes SET synced = 1 WHERE request_id = ? AND synced = 0", (request_id,)
    )
    accepted = accepted_word(kind)
    if word == accepted:
        conn.execute(
            "UPDATE outcomes SET outcome = ? WHERE request_id = ? AND kind = ? AND outcome = ?"
            " AND shown_accepted = 0 AND reason != ''",
            (Word.NEEDS_NETWORK, request_id, kind, accepted),
        )
