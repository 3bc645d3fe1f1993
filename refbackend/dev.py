"""Development endpoints (``--dev``): mint receipts and paycodes, create clients and venues.

They answer loopback clients only. ``ReferenceBackend``'s in-process methods
call the same functions as the HTTP endpoints.
"""

from __future__ import annotations

import ipaddress
import secrets
import sqlite3
from typing import TYPE_CHECKING, Any

from refbackend import accounts, ledger
from refbackend.tokens import BENEFITS, sign_paycode, sign_receipt
from refbackend.wire import ApiError, Reply, bad_request, new_id, take

if TYPE_CHECKING:
    from refbackend.app import App

__all__ = [
    "create_client",
    "create_venue",
    "handle",
    "is_allowed",
    "is_loopback",
    "mint_paycode",
    "mint_receipt",
]

MAX_AMOUNT = 10_000_000


def _address(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(addr: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses."""
    ip = _address(addr)
    return ip is not None and ip.is_loopback


def is_allowed(
    addr: str, extra: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
) -> bool:
    """May *addr* use the dev endpoints: loopback, or inside one of the *extra* networks."""
    ip = _address(addr)
    if ip is None:
        return False
    return ip.is_loopback or any(ip.version == net.version and ip in net for net in extra)


def _benefit(value: object) -> str:
    if value not in BENEFITS:
        raise bad_request(f"ben must be one of {sorted(BENEFITS)}")
    return str(value)


def mint_receipt(
    app: App, venue: str, amount_cents: int, ben: str = "massage", paid_at: float | None = None
) -> tuple[str, str]:
    """Record a payment to *venue* and sign its receipt: (tx, token). Raises ApiError."""
    amount_cents = take({"amount_cents": amount_cents}, "amount_cents", int, min_value=1,
                        max_value=MAX_AMOUNT)  # fmt: skip
    ben = _benefit(ben)
    when = int(app.clock() if paid_at is None else paid_at)
    with app.store.write() as conn:
        v = accounts.venue_object(conn, venue) if isinstance(venue, str) else None
        if v is None:
            raise ApiError(404, "unknown_venue", f"no venue {venue!r}")
        tx = new_id("tx_")
        ledger.record_receipt(conn, tx, venue, amount_cents, ben, when)
    token = sign_receipt(
        app.key.private,
        app.key.kid,
        issuer=app.issuer,
        tx=tx,
        venue=venue,
        venue_name=v["name"],
        venue_address=v["address"],
        amount_cents=amount_cents,
        paid_at=when,
        benefit=ben,
    )
    return tx, token


def mint_paycode(app: App, balance_cents: int, ben: str = "massage", ttl_s: int = 300) -> dict:
    """Issue a paycode worth *balance_cents*: ``{"jti", "code", "token"}``. Raises ApiError."""
    balance_cents = take({"balance_cents": balance_cents}, "balance_cents", int, min_value=0,
                         max_value=MAX_AMOUNT)  # fmt: skip
    ttl_s = take({"ttl_s": ttl_s}, "ttl_s", int, min_value=1, max_value=86_400)
    ben = _benefit(ben)
    issued = int(app.clock())
    jti = new_id("pc_")
    with app.store.write() as conn:
        for _ in range(10):
            code = f"{secrets.randbelow(10**12):012d}"
            try:
                ledger.record_paycode(conn, jti, code, ben, balance_cents, issued, issued + ttl_s)
                break
            except sqlite3.IntegrityError:
                continue  # that code exists already: draw another
        else:
            raise RuntimeError("could not draw an unused paycode")
    token = sign_paycode(
        app.key.private,
        app.key.kid,
        issuer=app.issuer,
        jti=jti,
        code=code,
        issued_at=issued,
        ttl_s=ttl_s,
        benefit=ben,
    )
    return {"jti": jti, "code": code, "token": token}


def create_client(app: App, venue: str) -> tuple[str, str]:
    """A new API client bound to *venue*. Raises ApiError 400/404."""
    venue = take({"venue": venue}, "venue", str, max_len=100)
    with app.store.write() as conn:
        return accounts.create_client(conn, venue)


def create_venue(
    app: App, name: str, address: str, services: list[dict] | None = None
) -> dict[str, Any]:
    """A new venue (default services: the demo studio's). Raises ApiError 400."""
    with app.store.write() as conn:
        return accounts.create_venue(conn, name, address, services)


def handle(app: App, method: str, path: str, body: dict[str, Any]) -> Reply:
    """One ``/dev`` request from a loopback client, body already parsed."""
    if method != "POST":
        raise ApiError(405, "method_not_allowed", "dev endpoints take POST")
    if path == "/dev/receipts":
        tx, token = mint_receipt(
            app,
            take(body, "venue", str, max_len=100),
            take(body, "amount_cents", int),
            take(body, "ben", str, required=False, default="massage"),
        )
        return Reply(200, {"tx": tx, "token": token})
    if path == "/dev/paycodes":
        return Reply(
            200,
            mint_paycode(
                app,
                take(body, "balance_cents", int),
                take(body, "ben", str, required=False, default="massage"),
                take(body, "ttl_s", int, required=False, default=300),
            ),
        )
    if path == "/dev/clients":
        client_id, secret = create_client(app, take(body, "venue", str, max_len=100))
        return Reply(200, {"client_id": client_id, "client_secret": secret})
    if path == "/dev/venues":
        services = body.get("services")
        return Reply(200, create_venue(app, body.get("name"), body.get("address"), services))  # type: ignore[arg-type]
    raise ApiError(404, "not_found", f"no dev endpoint {path}")
