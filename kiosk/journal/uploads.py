"""The journal's side of the upload path: which requests are open or due, and what a failed
upload leaves behind (backoff, failure count, quarantine).

Mixed into :class:`kiosk.journal.Journal`; the sync flow (:mod:`kiosk.flows.sync`)
decides, the journal records.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kiosk.journal.schema import Request, request_row
from kiosk.vocabulary import RequestKind, RequestState

if TYPE_CHECKING:
    import sqlite3

_OPEN = (RequestState.PENDING, RequestState.QUARANTINED)


class UploadBook:
    """Upload bookkeeping of the ``requests`` table."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]: ...

    def defer_checkpoints(self, pages: int = 10_000) -> None:
        """Leave WAL checkpoints to another connection (:meth:`checkpoint`), so that this
        one's commits (a customer waiting) never pay for copying the log into the file;
        past *pages* (a safety net) this connection checkpoints after all."""
        self._query(f"PRAGMA wal_autocheckpoint = {int(pages)}")

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the journal file without waiting for readers."""
        self._query("PRAGMA wal_checkpoint(PASSIVE)")

    def mark_sending(self, ids: Iterable[int]) -> None:
        """Durably mark requests as attempted before their first byte is sent (one commit).

        The mark freezes the body; it is taken back only on proof that nothing
        left (see :meth:`attempted`).
        """
        with self._write() as conn:
            conn.executemany(
                "UPDATE requests SET maybe_delivered = 1 WHERE id = ?", [(i,) for i in ids]
            )

    def distrust_unanswered(self) -> int:
        """Mark every pending request as possibly delivered; returns how many changed.

        For a new run of the kiosk: an earlier run may have sent a request and
        ended (crash, power cut) before it could note the attempt, so its body
        must never be rewritten nor the request voided; it counts as attempted
        (no longer the scan in hand of a running engine).
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE requests SET maybe_delivered = 1, attempts = MAX(attempts, 1)"
                " WHERE state = ? AND (maybe_delivered = 0 OR attempts = 0)",
                (RequestState.PENDING,),
            )
            return cur.rowcount

    def attempted(
        self, rid: int, error: str, *, maybe_delivered: bool, before: bool | None = None
    ) -> None:
        """Record a send attempt that got no definite answer.

        *maybe_delivered* is true when the request may have reached the backend
        (timeout, dropped connection, 5xx); from then on only the same key and
        body may ever be sent for it. When false (proof that nothing left:
        connection refused, DNS), the mark set before sending is taken back to
        *before*, what was true before this attempt.
        """
        if maybe_delivered or before is None:
            sql = "maybe_delivered = MAX(maybe_delivered, ?)"
            value = int(maybe_delivered)
        else:
            sql, value = "maybe_delivered = ?", int(before)
        with self._write() as conn:
            conn.execute(
                f"UPDATE requests SET attempts = attempts + 1, last_error = ?, {sql} WHERE id = ?",
                (error[:200], value, rid),
            )

    def open_requests(self, kind: RequestKind | None = None) -> list[Request]:
        """Requests still waiting for a definite answer, oldest first."""
        sql = "SELECT * FROM requests WHERE state IN (?, ?)"
        args: tuple[Any, ...] = _OPEN
        if kind is not None:
            sql += " AND kind = ?"
            args = (*_OPEN, kind)
        return [request_row(r) for r in self._query(sql + " ORDER BY id", args)]

    def open_request_for(
        self, kind: RequestKind, *, tx: str | None = None, ref: str | None = None
    ) -> Request | None:
        column, value = ("tx", tx) if tx is not None else ("ref", ref)
        rows = self._query(
            f"SELECT * FROM requests WHERE state IN (?, ?) AND kind = ? AND {column} = ?"
            " ORDER BY id LIMIT 1",
            (*_OPEN, kind, value),
        )
        return request_row(rows[0]) if rows else None

    def due_requests(
        self, now: float, *, everything: bool = False, after: int = 0, limit: int = 100
    ) -> list[Request]:
        """Open requests with ids above *after* whose backoff has run out (every open one
        if *everything*), oldest first, at most *limit*."""
        rows = self._query(
            "SELECT * FROM requests WHERE state IN (?, ?) AND id > ? AND (? OR next_try_at <= ?)"
            " ORDER BY id LIMIT ?",
            (*_OPEN, after, int(everything), now, limit),
        )
        return [request_row(r) for r in rows]

    def waiting_txs(self) -> dict[str, int]:
        """Transactions with an open check or charge: tx -> the oldest such request id.

        A cancel of such a transaction waits until the backend has answered it."""
        rows = self._query(
            "SELECT tx, MIN(id) FROM requests WHERE state IN (?, ?) AND kind != ?"
            " AND tx IS NOT NULL GROUP BY tx",
            (*_OPEN, RequestKind.CANCEL),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def upload_failed(
        self,
        rid: int,
        error: str,
        *,
        maybe_delivered: bool,
        before: bool,
        counted: bool,
        retry_at: float,
    ) -> None:
        """An upload got no definite answer: note it and leave the request alone until
        *retry_at*. *counted*: it counts towards quarantine. *maybe_delivered* false
        (proof that nothing left) takes the attempt mark back to *before*."""
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET attempts = attempts + 1, last_error = ?,"
                " maybe_delivered = CASE WHEN ? THEN 1 ELSE ? END,"
                " failures = failures + ?, next_try_at = MAX(next_try_at, ?)"
                " WHERE id = ? AND state IN (?, ?)",
                (
                    error[:200],
                    int(maybe_delivered),
                    int(before),
                    int(counted),
                    retry_at,
                    rid,
                    *_OPEN,
                ),
            )

    def count_failures(self, ids: list[int]) -> None:
        """Failures that turned out to be the request's own (others got through)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE requests SET failures = failures + 1 WHERE id = ?", [(i,) for i in ids]
            )

    def quarantine_due(self, after: int, retry_at: float) -> list[Request]:
        """Set aside pending requests that failed *after* times or more, to be retried at
        *retry_at* (and then rarely). Returns the requests newly set aside."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT * FROM requests WHERE state = ? AND failures >= ?",
                (RequestState.PENDING, after),
            ).fetchall()
            conn.execute(
                "UPDATE requests SET state = ?, next_try_at = ? WHERE state = ? AND failures >= ?",
                (RequestState.QUARANTINED, retry_at, RequestState.PENDING, after),
            )
        return [request_row(r) for r in rows]

    def pending_count(self) -> int:
        rows = self._query("SELECT COUNT(*) FROM requests WHERE state = ?", (RequestState.PENDING,))
        return int(rows[0][0])

    def quarantined_count(self) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM requests WHERE state = ?", (RequestState.QUARANTINED,)
        )
        return int(rows[0][0])

    def next_due(self, now: float) -> float | None:
        """Unix time after *now* at which the next backed-off open request is due."""
        rows = self._query(
            "SELECT MIN(next_try_at) FROM requests WHERE state IN (?, ?) AND next_try_at > ?",
            (*_OPEN, now),
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def sent_unreported(self) -> list[Request]:
        """Open checks and charges marked as sent that no outcome row refers to, oldest first.

        A run ended (a crash, a power cut) after sending one and before its answer and
        outcome were on the disk: the customer may have seen the result. Offline uploads
        (their outcome rows were written before they were shown) are not among them.
        """
        rows = self._query(
            "SELECT * FROM requests r WHERE r.state IN (?, ?) AND r.kind IN (?, ?)"
            " AND r.offline = 0 AND r.maybe_delivered = 1"
            " AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.request_id = r.id) ORDER BY r.id",
            (*_OPEN, RequestKind.RECEIPT, RequestKind.CHARGE),
        )
        return [request_row(r) for r in rows]
