"""The kiosk's local journal: a durable outbox of requests and a record of outcomes.

SQLite in WAL mode with ``synchronous=FULL``: a row is on disk before the
request it describes leaves the kiosk, and an offline acceptance is on disk
before the screen shows it. A backend's answer (with the outcome it leads to)
may be committed without waiting for the disk (``transaction(durable=False)``)
and flushed right after the result is shown: after a power cut in between,
the request is still there, marked as sent, and its resend under the same key
gets the same answer back (:mod:`kiosk.flows.recovery`).

Two tables:

``requests``
    One row per POST the kiosk sends (receipt check, charge, cancel), with its
    ``Idempotency-Key`` and the exact JSON body. ``state`` is ``pending`` (may
    or may not have reached the backend; resend verbatim until a definite
    answer), ``quarantined`` (still pending, but failed ``journal.quarantine_after``
    times: retried only every ``journal.quarantine_retry`` s), ``done`` (answered;
    ``status`` holds the status word) or ``void`` (never delivered and given up:
    refused at the counter while the backend was unreachable). A request is
    marked ``maybe_delivered`` durably before its first byte is sent; the mark
    goes only on proof that nothing left (connection refused, DNS).
``outcomes``
    One row per scan that reached a result, with the outcome word shown at the
    counter. ``history --local`` reads these. ``synced`` is false while the
    request behind it still waits for the backend. Rows pruned after the retention
    are tallied by outcome (:mod:`kiosk.journal.tally`), so counters never go down.

Flushes are few (5-50 ms each on an SD card): a scan's request is written
marked as attempted (one flush before it is sent); its answer, outcome and
last-sync time share one :meth:`Journal.transaction` that does not wait for the
disk; a replay makes one durable commit per window, while it is in flight: the
answers of the window before, and the mark of the next.

Each thread opens its own :class:`Journal` (SQLite connections are not shared
across threads). Every sqlite3 error is translated into JournalError,
JournalFull or JournalCorrupt here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.backend.bodies import encode
from kiosk.clock import BootTime
from kiosk.errors import JournalError
from kiosk.journal.conflict_book import became_conflicts, stamp_conflicts
from kiosk.journal.flush import flush_wal
from kiosk.journal.outcome_reads import OutcomeReader
from kiosk.journal.repair import Recovery, open_file
from kiosk.journal.schema import (
    SCHEMA_VERSION,
    OutcomeRow,
    Request,
    report_conflict,
    request_row,
    resolve_waiting,
    translated,
)
from kiosk.journal.tally import prune_outcomes
from kiosk.journal.uploads import UploadBook
from kiosk.journal.write_lock import WRITE_WAIT_S, committed, write_lock
from kiosk.vocabulary import OPEN_STATES, AmountCheck, RequestKind, RequestState, Word

_OPEN_SQL = ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATES))


class Journal(UploadBook, OutcomeReader):
    """The journal file; open one per thread with :meth:`open`."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, recovery: Recovery | None = None
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._depth = 0  # > 0 inside a transaction: writes join it
        self.path = path
        self.recovery = recovery  # set when this open mended a damaged journal
        self._writers = write_lock(path)  # shared with this process's other connections
        self.write_wait_s = WRITE_WAIT_S  # for the writers queued before (then JournalError)

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, recover: bool = True) -> Journal:
        """Open or create the journal at *path*, migrating its schema.

        A damaged file is mended when *recover* is true (:mod:`kiosk.journal.repair`):
        its indexes rebuilt in place, or its readable rows salvaged into a fresh
        journal, the old file kept as ``<name>.corrupt-<time>`` (``moved_aside``).
        ``recovery`` then says what was done. Raises JournalCorrupt (damaged, without
        *recover*) or JournalError (the file cannot be created or opened).
        """
        path = Path(path)
        conn, recovery = open_file(path, recover=recover)
        return cls(conn, path, recovery=recovery)

    @property
    def moved_aside(self) -> Path | None:
        """The damaged file kept when this open salvaged its rows into a fresh one."""
        aside = None if self.recovery is None else self.recovery.aside
        return None if aside is None else self.path.with_name(aside)

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("journal is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed write, in turn with the process's other writers of the file
        (:mod:`.write_lock`); inside :meth:`transaction` it joins that one instead."""
        conn = self.conn
        if self._depth:
            yield conn
            return
        with translated(), committed(conn, self._writers, self.write_wait_s):
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """Group every write inside into one commit (all or none).

        For an answer with its outcome and last-sync time, or many answers of a
        replay. Never hold one open across network I/O: it holds the write lock, which
        the process's other writers of the file queue for (:mod:`.write_lock`).
        *durable* false commits without waiting for the disk (``synchronous=NORMAL``):
        only for what a resend under the same key gets back (a backend's answer),
        followed by :meth:`flush` or the next durable commit. Inside another
        transaction it joins that one as it is.
        """
        if durable or self._depth:
            with self._write():
                yield
            return
        self._synchronous("NORMAL")
        try:
            with self._write():
                yield
        finally:
            self._synchronous("FULL")

    def _synchronous(self, level: str) -> None:
        with translated():
            self.conn.execute(f"PRAGMA synchronous={level}")

    def flush(self) -> bool:
        """Make every commit so far durable (one flush of the log); see :mod:`.flush`."""
        return flush_wal(self.path)

    def _query(self, sql: str, args: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with translated():
            return list(self.conn.execute(sql, args))

    # --- requests --------------------------------------------------------------------------

    def begin(
        self,
        kind: RequestKind,
        body: Mapping[str, Any] | str,
        *,
        tx: str | None = None,
        ref: str | None = None,
        amount_cents: int | None = None,
        offline: bool = False,
        sending: bool = False,
        now: float | None = None,
    ) -> Request:
        """Durably record a request before it is sent; mints its Idempotency-Key.

        *body* is stored as its canonical text (:func:`kiosk.backend.bodies.encode`),
        which every resend carries verbatim. Raises ValueError for an unsendable body.
        *sending*: it is about to be sent, so the same commit marks it as attempted
        (the returned Request is ``marked``; its ``maybe_delivered`` is still False,
        as nothing has left yet).
        """
        key = str(uuid.uuid4())
        created = time.time() if now is None else now
        text = encode(body)
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO requests (kind, idem_key, tx, ref, body, amount_cents, created_at,"
                " offline, maybe_delivered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, key, tx, ref, text, amount_cents, created, int(offline), int(sending)),
            )
            rid = cur.lastrowid
        assert rid is not None
        request = self.request(rid)
        return replace(request, maybe_delivered=False, marked=True) if sending else request

    def request(self, rid: int) -> Request:
        rows = self._query("SELECT * FROM requests WHERE id = ?", (rid,))
        if not rows:
            raise JournalError(f"request {rid} is not in the journal")
        return request_row(rows[0])

    def go_offline(self, rid: int, body: Mapping[str, Any] | str) -> Request:
        """Mark a never-delivered receipt check as accepted offline, with its upload body.

        Only for a request that provably never reached the backend (connection
        refused or not established), so the key was never seen and the body may change.
        """
        text = encode(body)
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET body = ?, offline = 1 WHERE id = ? AND state = ?"
                " AND maybe_delivered = 0",
                (text, rid, RequestState.PENDING),
            )
        return self.request(rid)

    def settle(
        self,
        rid: int,
        status: str,
        http_status: int,
        response: dict[str, Any],
        *,
        word: Word,
        tx: str | None = None,
        now: float | None = None,
        boot: BootTime | None = None,
    ) -> bool:
        """Record the backend's definite answer. Returns False if it was already settled.

        In the same transaction, outcome rows that waited for this answer are
        resolved with the outcome *word* (see :meth:`resolve`: a conflict is stamped
        with *now* and the boot-time reading *boot*), and an offline acceptance that
        the backend found checked by another device is reported to it
        (:func:`~kiosk.journal.schema.report_conflict`).
        """
        settled = time.time() if now is None else now
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE requests SET state = ?, status = ?, http_status = ?, response = ?,"
                f" settled_at = ?, tx = COALESCE(tx, ?) WHERE id = ? AND state IN ({_OPEN_SQL})",
                (
                    RequestState.DONE,
                    status,
                    http_status,
                    json.dumps(response, default=str),
                    settled,
                    tx,
                    rid,
                ),
            )
            if cur.rowcount != 1:
                return False
            resolved = resolve_waiting(conn, rid, word, tx)
            stamp_conflicts(conn, became_conflicts(resolved, word), now=settled, boot=boot)
            shown = [before for _, before in resolved]
            if Word.CHECKED_OFFLINE in shown and word == Word.ALREADY_CHECKED:
                report_conflict(conn, rid, response, now=settled)
            return True

    def void(self, rid: int, reason: str) -> None:
        """Give up a request that never reached the backend."""
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET state = ?, status = ?, settled_at = ?"
                " WHERE id = ? AND state = ? AND maybe_delivered = 0",
                (RequestState.VOID, reason, time.time(), rid, RequestState.PENDING),
            )

    def last_request_for(self, kind: RequestKind, tx: str) -> Request | None:
        rows = self._query(
            "SELECT * FROM requests WHERE kind = ? AND tx = ? AND state != ?"
            " ORDER BY id DESC LIMIT 1",
            (kind, tx, RequestState.VOID),
        )
        return request_row(rows[0]) if rows else None

    # --- outcomes --------------------------------------------------------------------------

    def record(
        self,
        kind: RequestKind,
        outcome: Word,
        *,
        tx: str | None = None,
        amount_cents: int | None = None,
        reason: str = "",
        request_id: int | None = None,
        synced: bool = True,
        shown_accepted: bool = False,
        now: float | None = None,
        service: str = "",
        amount_check: AmountCheck | None = None,
        amount_difference_cents: int | None = None,
    ) -> int:
        """Record the result of one scan (before the screen shows it).

        *service* names what was paid for (the charged service; for a checked receipt
        the matched service(s), or the nearest one when *amount_check* is a mismatch).
        """
        at = time.time() if now is None else now
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO outcomes (request_id, kind, tx, outcome, reason, amount_cents, at,"
                " synced, shown_accepted, service, amount_check, amount_difference_cents)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    kind,
                    tx,
                    outcome,
                    reason,
                    amount_cents,
                    at,
                    int(synced),
                    int(shown_accepted),
                    service,
                    amount_check,
                    amount_difference_cents,
                ),
            )
            rid = cur.lastrowid
        assert rid is not None
        return rid

    def resolve(self, request_id: int, word: Word, *, tx: str | None = None) -> None:
        """The backend answered a request whose outcome rows were waiting: mark them synced,
        as :meth:`settle` does (each takes :func:`kiosk.vocabulary.resolved_word` of its
        shown word and *word*; a new conflict is stamped, without a boot-time reading)."""
        with self._write() as conn:
            resolved = resolve_waiting(conn, request_id, word, tx)
            stamp_conflicts(conn, became_conflicts(resolved, word), now=time.time(), boot=None)

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def size_bytes(self) -> int:
        return sum(
            Path(str(self.path) + s).stat().st_size
            for s in ("", "-wal")
            if Path(str(self.path) + s).exists()
        )

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def prune(self, retention_days: int, *, now: float | None = None) -> int:
        """Delete answered requests and synced outcomes older than the retention; the
        outcomes deleted are added to the tally in the same commit."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        with self._write() as conn:
            n = prune_outcomes(conn, cutoff)
            conn.execute(
                f"DELETE FROM requests WHERE state NOT IN ({_OPEN_SQL}) AND created_at < ?"
                " AND id NOT IN (SELECT request_id FROM outcomes WHERE request_id IS NOT NULL)",
                (cutoff,),
            )
        return n


__all__ = ["SCHEMA_VERSION", "Journal", "OutcomeRow", "Request"]
