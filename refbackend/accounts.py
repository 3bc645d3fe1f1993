"""Venues, their services, API clients and access tokens of the reference backend.

Functions take an open connection (inside a ``Store`` transaction) and never
commit themselves. Client secrets and access tokens are stored only as
SHA-256 digests: both are long random strings, so a plain digest suffices.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from typing import Any

from refbackend.tokens import BENEFITS
from refbackend.wire import ApiError, bad_request, new_id, take

__all__ = [
    "DEMO_SERVICES",
    "DEMO_VENUE",
    "authenticate_client",
    "bearer_client",
    "create_client",
    "create_venue",
    "issue_access_token",
    "seed_demo",
    "venue_object",
]

DEMO_VENUE = "ven_demo0000000000"
DEMO_NAME = "Hierontastudio Demo"
DEMO_ADDRESS = "Esimerkkikatu 1, 00100 Helsinki"
DEMO_SERVICES: tuple[dict[str, Any], ...] = (
    {"id": "classic-60", "name": "Klassinen hieronta 60 min", "price_cents": 6500,
     "benefit": "massage", "eligible": True},
    {"id": "sports-45", "name": "Urheiluhieronta 45 min", "price_cents": 5500,
     "benefit": "massage", "eligible": True},
    {"id": "hotstone-60", "name": "Kuumakivihieronta 60 min", "price_cents": 7500,
     "benefit": "massage", "eligible": False},
)  # fmt: skip
_SERVICE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SERVICES = 50


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def seed_demo(conn: sqlite3.Connection) -> bool:
    """Create the demo venue when the database has no venue yet; True if it did."""
    if conn.execute("SELECT 1 FROM venues LIMIT 1").fetchone() is not None:
        return False
    _insert_venue(conn, DEMO_VENUE, DEMO_NAME, DEMO_ADDRESS, [dict(s) for s in DEMO_SERVICES])
    return True


def create_venue(
    conn: sqlite3.Connection, name: object, address: object, services: object
) -> dict[str, Any]:
    """Validate and create a venue with a new id. Raises ApiError 400 on bad input."""
    name_text: str = take({"name": name}, "name", str, max_len=200)
    address_text: str = take({"address": address}, "address", str, max_len=200)
    checked = [dict(s) for s in DEMO_SERVICES] if services is None else _checked_services(services)
    return _insert_venue(conn, new_id("ven_"), name_text, address_text, checked)


def _checked_services(services: object) -> list[dict[str, Any]]:
    if not isinstance(services, list) or len(services) > MAX_SERVICES:
        raise bad_request(f"field 'services' must be a list of at most {MAX_SERVICES} objects")
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in services:
        if not isinstance(item, dict):
            raise bad_request("each service must be an object")
        sid = take(item, "id", str, max_len=64)
        if not _SERVICE_ID.fullmatch(sid) or sid in seen:
            raise bad_request(f"service id {sid!r} is not of the form [A-Za-z0-9_.-] or repeats")
        seen.add(sid)
        benefit = take(item, "benefit", str, required=False, default="massage")
        if benefit not in BENEFITS:
            raise bad_request(f"service benefit must be one of {sorted(BENEFITS)}")
        result.append(
            {
                "id": sid,
                "name": take(item, "name", str, max_len=200),
                "price_cents": take(item, "price_cents", int, min_value=1, max_value=10_000_000),
                "benefit": benefit,
                "eligible": take(item, "eligible", bool, required=False, default=True),
            }
        )
    return result


def _insert_venue(
    conn: sqlite3.Connection, ven: str, name: str, address: str, services: list[dict[str, Any]]
) -> dict[str, Any]:
    conn.execute("INSERT INTO venues(id, name, address) VALUES (?, ?, ?)", (ven, name, address))
    conn.executemany(
        "INSERT INTO services(venue, id, name, price_cents, benefit, eligible, position)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (ven, s["id"], s["name"], s["price_cents"], s["benefit"], int(s["eligible"]), i)
            for i, s in enumerate(services)
        ],
    )
    return {"id": ven, "name": name, "address": address, "services": services}


def venue_object(conn: sqlite3.Connection, ven: str) -> dict[str, Any] | None:
    """The venue as the contract shows it, or None if there is no such venue."""
    row = conn.execute("SELECT id, name, address FROM venues WHERE id = ?", (ven,)).fetchone()
    if row is None:
        return None
    services = [
        {
            "id": s["id"],
            "name": s["name"],
            "price_cents": s["price_cents"],
            "benefit": s["benefit"],
            "eligible": bool(s["eligible"]),
        }
        for s in conn.execute(
            "SELECT * FROM services WHERE venue = ? ORDER BY position", (ven,)
        ).fetchall()
    ]
    return {"id": row["id"], "name": row["name"], "address": row["address"], "services": services}


def create_client(conn: sqlite3.Connection, venue: str) -> tuple[str, str]:
    """A new API client bound to *venue*: (client_id, client_secret). Raises ApiError 404."""
    if conn.execute("SELECT 1 FROM venues WHERE id = ?", (venue,)).fetchone() is None:
        raise ApiError(404, "unknown_venue", f"no venue {venue!r}; create it first")
    client_id = new_id("cli_")
    secret = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO clients(id, secret_hash, venue) VALUES (?, ?, ?)",
        (client_id, _digest(secret), venue),
    )
    return client_id, secret


def authenticate_client(conn: sqlite3.Connection, client_id: str, secret: str) -> bool:
    """True when *secret* is the secret of *client_id* (constant-time comparison)."""
    row = conn.execute("SELECT secret_hash FROM clients WHERE id = ?", (client_id,)).fetchone()
    expected = row["secret_hash"] if row is not None else "0" * 64
    return hmac.compare_digest(expected, _digest(secret)) and row is not None


def issue_access_token(conn: sqlite3.Connection, client_id: str, now: float, ttl_s: int) -> str:
    """A new bearer token for *client_id*, valid *ttl_s* seconds; expired ones are purged."""
    conn.execute("DELETE FROM access_tokens WHERE expires_at < ?", (now,))
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO access_tokens(hash, client, expires_at) VALUES (?, ?, ?)",
        (_digest(token), client_id, now + ttl_s),
    )
    return token


def bearer_client(conn: sqlite3.Connection, token: str, now: float) -> tuple[str, str] | None:
    """(client_id, venue) of a valid, unexpired bearer token; None otherwise."""
    row = conn.execute(
        "SELECT t.client, t.expires_at, c.venue FROM access_tokens t"
        " JOIN clients c ON c.id = t.client WHERE t.hash = ?",
        (_digest(token),),
    ).fetchone()
    if row is None or row["expires_at"] <= now:
        return None
    return row["client"], row["venue"]
