"""Idempotency keys for every POST under ``/v1``.

A key belongs to one client. The first request with a key claims it (a row
without a stored answer) in its own committed transaction; the answer is then
stored in the same transaction as the work it describes, so a committed
change always has its answer ready for replay. Same key and same body replays
that answer (kept ``RETAIN_S``, more than the 24 h the contract promises);
another body is ``422 idempotency_mismatch``; a retry while the first is still
running is ``409 in_progress`` with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any

from refbackend.store import Store
from refbackend.wire import ApiError, Reply, error

__all__ = ["Idempotency", "fingerprint", "parse_key"]

RETAIN_S = 48 * 3600
_PURGE_EVERY_S = 600.0


def parse_key(value: str | None) -> str:
    """The ``Idempotency-Key`` header as a lower-case UUID. Raises ApiError 400."""
    if value is None:
        raise ApiError(400, "bad_request", "Idempotency-Key header is required (a UUID)")
    try:
        parsed = uuid.UUID(value)
    except ValueError as exc:
        raise ApiError(400, "bad_request", "Idempotency-Key must be a UUID") from exc
    if str(parsed) != value.lower():
        raise ApiError(400, "bad_request", "Idempotency-Key must be a UUID in 8-4-4-4-12 form")
    return str(parsed)


def fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """What "the same request" means: method, path and the body as canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class Idempotency:
    """Claims, stored answers and replays of idempotency keys. Any thread may call it."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._last_purge = float("-inf")
        self._purge_lock = threading.Lock()

    def claim(self, client: str, key: str, fp: str) -> Reply | None:
        """Claim *key* for a new request (None), or the answer to give instead of running it."""
        now = self._clock()
        self._purge(now)
        with self._store.write() as conn:
            row = conn.execute(
                "SELECT * FROM idempotency WHERE client = ? AND key = ?", (client, key)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO idempotency(client, key, fingerprint, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (client, key, fp, now),
                )
                return None
        if row["fingerprint"] != fp:
            return error(
                422,
                "idempotency_mismatch",
                "this Idempotency-Key was used with another request; use a new key",
            )
        if row["code"] is None:
            return error(
                409, "in_progress", "the first request with this key is still running",
                retry_after=1,
            )  # fmt: skip
        headers = tuple(tuple(h) for h in json.loads(row["headers"] or "[]"))
        return Reply(int(row["code"]), raw=bytes(row["body"]), headers=headers)

    def finish(self, conn: sqlite3.Connection, client: str, key: str, reply: Reply) -> None:
        """Store *reply* as the answer for *key*, inside the caller's write transaction."""
        conn.execute(
            "UPDATE idempotency SET code = ?, body = ?, headers = ? WHERE client = ? AND key = ?",
            (reply.code, reply.payload(), json.dumps(list(reply.headers)), client, key),
        )

    def abandon(self, client: str, key: str) -> None:
        """Release a claim whose request failed without an answer, so a retry can run it."""
        with self._store.write() as conn:
            conn.execute(
                "DELETE FROM idempotency WHERE client = ? AND key = ? AND code IS NULL",
                (client, key),
            )

    def _purge(self, now: float) -> None:
        with self._purge_lock:
            if now - self._last_purge < _PURGE_EVERY_S:
                return
            self._last_purge = now
        with self._store.write() as conn:
            conn.execute(
                "DELETE FROM idempotency WHERE code IS NOT NULL AND created_at < ?",
                (now - RETAIN_S,),
            )
