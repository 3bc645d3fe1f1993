"""The journal's SQLite schema, its migrations, row types and error translation.

Every sqlite3 error of the journal is translated here into JournalError,
JournalFull or JournalCorrupt; :mod:`kiosk.journal` holds the operations.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kiosk.backend.bodies import encode
from kiosk.errors import JournalCorrupt, JournalError, JournalFull
from kiosk.journal.integrity import require_intact
from kiosk.journal.write_lock import WRITE_WAIT_S, WriteLock, committed, write_lock
from kiosk.vocabulary import (
    OPEN_STATES,
    AmountCheck,
    RequestKind,
    RequestState,
    Word,
    resolved_reason,
    resolved_word,
)

_E = TypeVar("_E", RequestKind, RequestState, Word, AmountCheck)

SCHEMA_VERSION = 7
# How long a write waits for another process's write lock on the file (SQLite's busy
# timeout); the writers of this process queue on :mod:`.write_lock` before that.
BUSY_S = 5.0

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        idem_key TEXT NOT NULL UNIQUE,
        tx TEXT,
        ref TEXT,
        body TEXT NOT NULL,
        amount_cents INTEGER,
        created_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        offline INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT,
        http_status INTEGER,
        response TEXT,
        settled_at REAL
    );
    CREATE INDEX requests_open ON requests(state, id);
    CREATE INDEX requests_tx ON requests(tx);
    CREATE INDEX requests_ref ON requests(ref);
    CREATE TABLE outcomes (
        id INTEGER PRIMARY KEY,
        request_id INTEGER REFERENCES requests(id),
        kind TEXT NOT NULL,
        tx TEXT,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        amount_cents INTEGER,
        at REAL NOT NULL,
        synced INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX outcomes_tx ON outcomes(tx);
    CREATE INDEX outcomes_at ON outcomes(at);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    2: """
    ALTER TABLE outcomes ADD COLUMN shown_accepted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN last_error TEXT;
    ALTER TABLE requests ADD COLUMN maybe_delivered INTEGER NOT NULL DEFAULT 0;
    """,
    # What an accepted scan paid for: the charged service, or a checked receipt's amount
    # against the price list (the matched service(s), or the nearest one and the difference).
    3: """
    ALTER TABLE outcomes ADD COLUMN service TEXT NOT NULL DEFAULT '';
    ALTER TABLE outcomes ADD COLUMN amount_check TEXT;
    ALTER TABLE outcomes ADD COLUMN amount_difference_cents INTEGER;
    """,
    # Per-request backoff and quarantine: consecutive own failures and the next try's time.
    4: """
    ALTER TABLE requests ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN next_try_at REAL NOT NULL DEFAULT 0;
    """,
    # Outcome rows pruned after the retention, by outcome word (kiosk.journal.tally): the
    # cumulative counters add them to the rows kept, so that a prune never lowers them.
    5: """
    CREATE TABLE pruned_outcomes (outcome TEXT PRIMARY KEY, scans INTEGER NOT NULL);
    """,
    # The backoff's end on the boot-time clock (which no wall-clock jump moves), with the
    # boot it belongs to; '' for a backoff set without one (next_try_at then decides).
    6: """
    ALTER TABLE requests ADD COLUMN next_try_boot_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN next_try_boot REAL NOT NULL DEFAULT 0;
    """,
    # The outcome rows of a request: every answer looks for the rows that wait for it
    # (and keeps one row of money) in the answer's commit; without the index each of those
    # statements read the whole table, a scan's cost growing with the journal's age.
    7: """
    CREATE INDEX outcomes_request ON outcomes(request_id);
    """,
}


@dataclass(frozen=True)
class Request:
    """One journaled POST: resend ``text`` verbatim with ``key`` until answered.

    ``text`` is the body's canonical JSON as stored; ``body`` is the same, parsed.
    """

    id: int
    kind: RequestKind
    key: str
    tx: str | None  # receipt tx, or the transaction a cancel targets
    ref: str | None  # paycode id or code for charges
    body: dict[str, Any]
    text: str
    amount_cents: int | None
    created_at: float
    state: RequestState
    offline: bool
    attempts: int
    maybe_delivered: bool = False
    status: str | None = None
    response: dict[str, Any] | None = None
    settled_at: float | None = None
    failures: int = 0  # failed uploads that count towards quarantine
    next_try_at: float = 0.0  # Unix time before which uploads leave it alone (backoff)
    last_error: str | None = None
    # Marked as attempted in the journal already (by Journal.begin(sending=True)), while
    # ``maybe_delivered`` above still says what was true before this attempt.
    marked: bool = False

    @property
    def open(self) -> bool:
        """Still owed an answer by the backend (pending or quarantined)."""
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class OutcomeRow:
    """One scan that reached a result, as ``history --local`` shows it."""

    id: int
    request_id: int | None
    kind: RequestKind
    tx: str | None
    outcome: Word
    reason: str
    amount_cents: int | None
    at: float
    synced: bool
    shown_accepted: bool
    service: str = ""  # the charged service; a checked receipt's matched or nearest one(s)
    amount_check: AmountCheck | None = None  # a checked receipt against the price list
    amount_difference_cents: int | None = None  # amount minus the nearest service's price


def connect(path: Path) -> sqlite3.Connection:
    with translated():
        conn = sqlite3.connect(
            str(path), timeout=BUSY_S, isolation_level=None, check_same_thread=True
        )
        try:
            conn.row_factory = sqlite3.Row
            _refuse_foreign(conn, path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_S * 1000)}")
            _migrate(conn, write_lock(path))
            require_intact(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Tables without a schema version: another program's database. Leave it untouched
    (not even switched to WAL) rather than add the journal's tables to it.

    Both are read in one snapshot: a kiosk creating the journal right now must not
    be seen with its tables made but its version not yet set."""
    conn.execute("BEGIN")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 3"
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    if version != 0:
        return
    if rows:
        names = ", ".join(str(r[0]) for r in rows)
        raise JournalError(
            f"{path} is another program's database (tables {names}); move it away"
            " or set journal.path to a new file"
        )


def _migrate(conn: sqlite3.Connection, lock: WriteLock) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal schema {version} is newer than this kiosk ({SCHEMA_VERSION});"
            " install the newer release again or move the journal aside"
        )
    if version < SCHEMA_VERSION:
        conn.execute("PRAGMA integrity_check")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with committed(conn, lock, WRITE_WAIT_S):
            # Another thread may have migrated between our read and our write lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= target:
                continue
            for statement in MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
    # A cheap read of every table surfaces a damaged file now rather than mid-scan.
    conn.execute("SELECT COUNT(*) FROM requests").fetchone()
    conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()
    conn.execute("SELECT COUNT(*) FROM pruned_outcomes").fetchone()


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc).lower()
        if code == sqlite3.SQLITE_FULL or "disk is full" in text:
            raise JournalFull(
                "the disk holding the journal is full; free space (old logs) — stored"
                " entries are kept"
            ) from exc
        if (
            code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
            or "malformed" in text
            or ("not a database" in text)
        ):
            raise JournalCorrupt(f"journal file is damaged ({exc})") from exc
        if code == sqlite3.SQLITE_BUSY or "database is locked" in text:
            raise JournalError(
                f"journal busy: another program kept it locked for over {BUSY_S:g} s (a"
                " kiosk command beside the service?); the write was not made. Let that"
                " command finish or stop it, then try again"
            ) from exc
        raise JournalError(f"journal cannot be used: {exc}") from exc


def request_row(r: sqlite3.Row) -> Request:
    return Request(
        id=r["id"],
        kind=_typed(RequestKind, r["kind"]),
        key=r["idem_key"],
        tx=r["tx"],
        ref=r["ref"],
        body=json.loads(r["body"]),
        text=r["body"],
        amount_cents=r["amount_cents"],
        created_at=r["created_at"],
        state=_typed(RequestState, r["state"]),
        offline=bool(r["offline"]),
        attempts=r["attempts"],
        maybe_delivered=bool(r["maybe_delivered"]),
        status=r["status"],
        response=json.loads(r["response"]) if r["response"] else None,
        settled_at=r["settled_at"],
        failures=r["failures"],
        next_try_at=r["next_try_at"],
        last_error=r["last_error"],
    )


def outcome_row(r: sqlite3.Row) -> OutcomeRow:
    return OutcomeRow(
        id=r["id"],
        request_id=r["request_id"],
        kind=_typed(RequestKind, r["kind"]),
        tx=r["tx"],
        outcome=_typed(Word, r["outcome"]),
        reason=r["reason"],
        amount_cents=r["amount_cents"],
        at=r["at"],
        synced=bool(r["synced"]),
        shown_accepted=bool(r["shown_accepted"]),
        service=r["service"],
        amount_check=_typed(AmountCheck, r["amount_check"]) if r["amount_check"] else None,
        amount_difference_cents=r["amount_difference_cents"],
    )


def _typed(enum: type[_E], value: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise JournalCorrupt(f"journal holds an unknown {enum.__name__} {value!r}") from None


def resolve_waiting(
    conn: sqlite3.Connection, request_id: int, word: Word, tx: str | None
) -> list[tuple[int, Word]]:
    """Rows that waited for *request_id* take the word :func:`resolved_word` gives them
    (and a conflict the backend's word as its reason). Returns (row id, word it had)."""
    waiting = conn.execute(
        "SELECT id, outcome, reason FROM outcomes WHERE request_id = ? AND synced = 0",
        (request_id,),
    ).fetchall()
    shown_words: list[tuple[int, Word]] = []
    for row_id, shown, reason in waiting:
        try:
            before = Word(shown)
        except ValueError:
            before = word
        shown_words.append((int(row_id), before))
        conn.execute(
            "UPDATE outcomes SET synced = 1, tx = COALESCE(tx, ?), outcome = ?, reason = ?"
            " WHERE id = ?",
            (tx, resolved_word(before, word), resolved_reason(before, word, reason), row_id),
        )
    return shown_words


def report_conflict(
    conn: sqlite3.Connection, rid: int, response: dict[str, Any], *, now: float
) -> int | None:
    """Journal the report of an offline acceptance whose check came back 409.

    The check *rid* was sent with ``offline: false`` (its outcome was unknown when
    the kiosk accepted the receipt offline, so its body could not change). When
    another device had checked the receipt, the acceptance is reported with a new
    Idempotency-Key and the same body but ``offline: true``, so that the backend
    records the conflict (backend-api.md, "Offline acceptance after an unknown
    outcome"). Called inside the settle's transaction: journaled exactly once.
    Returns the new request's id, or None when nothing is to be reported.
    """
    row = conn.execute(
        "SELECT kind, tx, body, amount_cents FROM requests WHERE id = ?", (rid,)
    ).fetchone()
    if row is None or row["kind"] != RequestKind.RECEIPT:
        return None
    body = json.loads(row["body"])
    if not isinstance(body, dict) or body.get("offline") is not False:
        return None  # uploaded as offline already: the backend recorded the conflict
    if response.get("checked_by") == body.get("device"):
        return None  # checked by this device under another key: no conflict
    text = encode(dict(body, offline=True))
    cur = conn.execute(
        "INSERT INTO requests (kind, idem_key, tx, body, amount_cents, created_at, offline)"
        " VALUES (?, ?, ?, ?, ?, ?, 1)",
        (RequestKind.RECEIPT, str(uuid.uuid4()), row["tx"], text, row["amount_cents"], now),
    )
    return cur.lastrowid
