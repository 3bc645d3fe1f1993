"""SQLite storage of the reference backend: schema, connections, transactions.

One database file in WAL mode. Writers take ``BEGIN IMMEDIATE`` (and, inside
this process, a lock so that concurrent request threads queue instead of
spinning on ``SQLITE_BUSY``); that is what makes "50 concurrent checks of one
receipt give exactly one 200" hold. Readers use plain deferred transactions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from refbackend.errors import BackendError

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS venues(
    id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services(
    venue TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, price_cents INTEGER NOT NULL,
    benefit TEXT NOT NULL, eligible INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY(venue, id));
CREATE TABLE IF NOT EXISTS clients(
    id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, venue TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_tokens(
    hash TEXT PRIMARY KEY, client TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transactions(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tx TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,            -- receipt | charge
    venue TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    benefit TEXT NOT NULL,
    state TEXT NOT NULL,           -- paid (receipt not yet checked) | checked | charged | cancelled
    paid_at REAL NOT NULL,         -- payment time (receipt) or charge time (charge)
    at REAL,                       -- when it became the venue's event: check, charge or cancel
    device TEXT,
    offline INTEGER NOT NULL DEFAULT 0,
    conflict INTEGER NOT NULL DEFAULT 0,
    service TEXT,
    paycode TEXT,
    cancelled_at REAL,
    cancel_reason TEXT);
CREATE INDEX IF NOT EXISTS transactions_history ON transactions(venue, at DESC, seq DESC);
CREATE TABLE IF NOT EXISTS paycodes(
    jti TEXT PRIMARY KEY, code TEXT UNIQUE NOT NULL, benefit TEXT NOT NULL,
    balance_cents INTEGER NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    used_by TEXT);
CREATE TABLE IF NOT EXISTS conflicts(
    id INTEGER PRIMARY KEY, tx TEXT NOT NULL, device TEXT NOT NULL, scanned_at REAL,
    recorded_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency(
    client TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at REAL NOT NULL,
    code INTEGER, body BLOB, headers TEXT,
    PRIMARY KEY(client, key));
"""

_POOL_SIZE = 8


class Store:
    """The backend's database. Any thread may use it; ``close()`` may be repeated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_lock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        try:
            if not path.exists():  # secrets' digests and answers live here: owner-only
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            # No request of this process can be running yet: earlier in-progress claims
            # belong to a process that ended, so their keys may be retried.
            conn.execute("DELETE FROM idempotency WHERE code IS NULL")
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(
                f"cannot open the backend database {path}: {exc}; "
                "check the path, or move a damaged file aside"
            ) from exc
        self._release(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._closed:
                raise BackendError("the backend database is closed")
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._pool) < _POOL_SIZE:
                self._pool.append(conn)
                return
        conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error."""
        conn = self._acquire()
        try:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        finally:
            self._release(conn)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction seeing one consistent snapshot."""
        conn = self._acquire()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")
        finally:
            self._release(conn)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()
