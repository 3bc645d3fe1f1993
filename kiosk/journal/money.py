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
from typing import assert_never

from kiosk.journal.schema import OutcomeRow
from kiosk.vocabulary import RequestKind, Word, is_payment, meaning

__all__ = ["accepted_word", "keep_one_row_of_money", "late_answer", "money_cents"]


def accepted_word(kind: RequestKind) -> Word:
    """The word of a request of *kind* that the backend accepted (a row of money)."""
    match kind:
        case RequestKind.RECEIPT:
            return Word.CHECKED
        case RequestKind.CHARGE:
            return Word.CHARGED
        case RequestKind.CANCEL:
            return Word.CANCELLED
        case _:
            assert_never(kind)


def late_answer(row: OutcomeRow) -> bool:
    """True for an acceptance that arrived after the customer was shown ``needs_network``."""
    return row.outcome == accepted_word(row.kind) and not row.shown_accepted and bool(row.reason)


def money_cents(row: OutcomeRow) -> int:
    """What the row adds to the day's money: a payment accepted at the counter (a checked
    receipt, online or offline, or a charge: :func:`kiosk.vocabulary.meaning`) its amount,
    a cancel gone through minus its amount, anything else (a conflict: the money was
    counted where the receipt was checked first) nothing."""
    amount = row.amount_cents or 0
    said = meaning(row.outcome)
    if is_payment(row.kind):
        return amount if said.payment else 0
    return -amount if said.cancels else 0


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
