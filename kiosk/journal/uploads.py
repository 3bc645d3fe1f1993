"""The journal's side of the upload path: which requests are open or due, and what a failed
upload leaves behind (backoff, failure count, quarantine).

Mixed into :class:`kiosk.journal.Journal`; the sync flow (:mod:`kiosk.flows.sync`)
decides, the journal records.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kiosk.clock import BootTime
from kiosk.journal.schema import Request, request_row
from kiosk.vocabulary import RequestKind, RequestState

if TYPE_CHECKING:
    import sqlite3

_OPEN = (RequestState.PENDING, RequestState.QUARANTINED)
# A backoff is over when its end on the boot-time clock has passed in this boot, at once
# after a reboot (the boot-time clock of an earlier boot proves nothing), and by the wall
# clock only for a backoff set without a boot-time reading. Parameters: boot id, boot s, now.
_BACKOFF_OVER = (
    "CASE WHEN next_try_boot_id = '' THEN next_try_at <= :now"
    " WHEN next_try_boot_id != :boot_id THEN 1 ELSE next_try_boot <= :boot_s END"
)


def _boot_args(now: float, boot: BootTime | None) -> dict[str, Any]:
    return {
        "now": now,
        "boot_id": boot.boot_id if boot else "",
        "boot_s": boot.seconds if boot else 0.0,
    }


def _ends(wait_s: float, boot: BootTime | None) -> tuple[str, float]:
    """(boot id, boot-time seconds) at which a backoff of *wait_s* from *boot* ends."""
    return (boot.boot_id, boot.seconds + wait_s) if boot else ("", 0.0)


class UploadBook:
    """Upload bookkeeping of the ``requests`` table."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(
            self, sql: str, args: tuple[Any, ...] | dict[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

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

    def unmark_unsent(self, ids: Iterable[int]) -> None:
        """Take back the attempt mark of open requests that were marked but never handed to
        the network (a window chosen ahead whose turn did not come): proof that nothing left."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE requests SET maybe_delivered = 0 WHERE id = ? AND state IN (?, ?)",
                [(i, *_OPEN) for i in ids],
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
        self,
        now: float,
        *,
        boot: BootTime | None = None,
        everything: bool = False,
        after: int = 0,
        limit: int = 100,
    ) -> list[Request]:
        """Open requests with ids above *after* whose backoff has run out at wall time *now*
        and boot-time reading *boot* (every open one if *everything*), oldest first, at
        most *limit*."""
        rows = self._query(
            "SELECT * FROM requests WHERE state IN (:pending, :quarantined) AND id > :after"
            f" AND (:everything OR {_BACKOFF_OVER}) ORDER BY id LIMIT :limit",
            {
                "pending": _OPEN[0],
                "quarantined": _OPEN[1],
                "after": after,
                "everything": int(everything),
                "limit": limit,
                **_boot_args(now, boot),
            },
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
        wait_s: float = 0.0,
        boot: BootTime | None = None,
    ) -> None:
        """An upload got no definite answer: note it and leave the request alone until
        *retry_at* (wall time), that is for *wait_s* from the boot-time reading *boot*.
        *counted*: it counts towards quarantine. *maybe_delivered* false (proof that
        nothing left) takes the attempt mark back to *before*."""
        boot_id, boot_s = _ends(wait_s, boot)
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET attempts = attempts + 1, last_error = ?,"
                " maybe_delivered = CASE WHEN ? THEN 1 ELSE ? END,"
                " failures = failures + ?, next_try_at = MAX(next_try_at, ?),"
                " next_try_boot = CASE WHEN next_try_boot_id = ? THEN MAX(next_try_boot, ?)"
                " ELSE ? END, next_try_boot_id = ?"
                " WHERE id = ? AND state IN (?, ?)",
                (
                    error[:200],
                    int(maybe_delivered),
                    int(before),
                    int(counted),
                    retry_at,
                    boot_id,
                    boot_s,
                    boot_s,
                    boot_id,
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

    def quarantine_due(
        self, after: int, retry_at: float, wait_s: float = 0.0, boot: BootTime | None = None
    ) -> list[Request]:
        """Set aside pending requests that failed *after* times or more, to be retried at
        *retry_at*, *wait_s* from the boot-time reading *boot* (and then rarely). Returns
        the requests newly set aside."""
        boot_id, boot_s = _ends(wait_s, boot)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT * FROM requests WHERE state = ? AND failures >= ?",
                (RequestState.PENDING, after),
            ).fetchall()
            conn.execute(
                "UPDATE requests SET state = ?, next_try_at = ?, next_try_boot_id = ?,"
                " next_try_boot = ? WHERE state = ? AND failures >= ?",
                (
                    RequestState.QUARANTINED,
                    retry_at,
                    boot_id,
                    boot_s,
                    RequestState.PENDING,
                    after,
                ),
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

    def next_due(self, now: float, boot: BootTime | None = None) -> float | None:
        """Unix time after *now* (boot-time reading *boot*) at which the next backed-off
        open request is due."""
        rows = self._query(
            "SELECT MIN(CASE WHEN next_try_boot_id = '' THEN next_try_at"
            " ELSE :now + next_try_boot - :boot_s END) FROM requests"
            " WHERE state IN (:pending, :quarantined) AND NOT"
            f" {_BACKOFF_OVER}",
            {"pending": _OPEN[0], "quarantined": _OPEN[1], **_boot_args(now, boot)},
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
