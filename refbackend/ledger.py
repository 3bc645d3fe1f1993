"""Receipts, payment codes, charges, cancels and history: the backend's money rules.

Each operation takes a connection inside a write (or read) transaction and
returns the contract's answer as a ``Reply``; it never commits. Callers
verify token signatures first (``refbackend.tokens``) and pass what they proved.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import datetime
from typing import Any, assert_never
from zoneinfo import ZoneInfo

from refbackend.tokens import IssuedReceipt
from refbackend.vocabulary import TxKind
from refbackend.wire import Reply, error, rfc3339

__all__ = [
    "CancelDay",
    "cancel",
    "charge",
    "check_receipt",
    "decode_cursor",
    "history",
    "record_paycode",
    "record_receipt",
]

HELSINKI = ZoneInfo("Europe/Helsinki")


class CancelDay:
    """The calendar in which "same day" is judged for cancels (Europe/Helsinki)."""

    @staticmethod
    def date_of(ts: float) -> str:
        return datetime.fromtimestamp(ts, HELSINKI).date().isoformat()


def record_receipt(
    conn: sqlite3.Connection, tx: str, venue: str, amount_cents: int, benefit: str, paid_at: int
) -> None:
    """Store a receipt this backend issued; it is 'paid' until a kiosk checks it."""
    conn.execute(
        "INSERT INTO transactions(tx, kind, venue, amount_cents, benefit, state, paid_at)"
        " VALUES (?, ?, ?, ?, ?, 'paid', ?)",
        (tx, TxKind.RECEIPT, venue, amount_cents, benefit, paid_at),
    )


def record_paycode(
    conn: sqlite3.Connection,
    jti: str,
    code: str,
    benefit: str,
    balance_cents: int,
    issued_at: int,
    expires_at: int,
) -> None:
    """Store a paycode. Raises sqlite3.IntegrityError if *code* is taken (caller redraws)."""
    conn.execute(
        "INSERT INTO paycodes(jti, code, benefit, balance_cents, issued_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (jti, code, benefit, balance_cents, issued_at, expires_at),
    )


def _venue_name(conn: sqlite3.Connection, ven: str) -> str:
    row = conn.execute("SELECT name FROM venues WHERE id = ?", (ven,)).fetchone()
    return str(row["name"]) if row is not None else ""


def check_receipt(
    conn: sqlite3.Connection,
    receipt: IssuedReceipt,
    *,
    venue: str,
    device: str,
    offline: bool,
    scanned_at: float,
    now: float,
) -> Reply:
    """Mark a verified receipt Checked for *venue*: 200, 409, 410, 403 or 422."""
    row = conn.execute(
        "SELECT * FROM transactions WHERE tx = ? AND kind = ?", (receipt.tx, TxKind.RECEIPT)
    ).fetchone()
    if row is None:
        return error(422, "invalid", "this backend never issued that receipt", reason="unknown_tx")
    if row["amount_cents"] != receipt.amount_cents or row["venue"] != receipt.venue:
        return error(422, "invalid", "receipt claims differ from the payment", reason="mismatch")
    if row["venue"] != venue:
        return error(
            403,
            "wrong_venue",
            "the receipt was paid to another venue",
            venue_name=_venue_name(conn, row["venue"]) or receipt.venue_name,
        )
    if row["state"] == "cancelled":
        if offline:
            _record_conflict(conn, receipt.tx, device, scanned_at, now)
        return error(410, "cancelled", "the payment was cancelled")
    if row["state"] == "checked":
        if offline:
            _record_conflict(conn, receipt.tx, device, scanned_at, now)
        return error(
            409,
            "already_checked",
            f"already checked at {rfc3339(row['at'])} by {row['device']}",
            tx=receipt.tx,
            checked_at=rfc3339(row["at"]),
            checked_by=row["device"],
        )
    # An offline check happened when the kiosk scanned it; never before payment or in future.
    checked_at = min(now, max(scanned_at, row["paid_at"])) if offline else now
    conn.execute(
        "UPDATE transactions SET state = 'checked', at = ?, device = ?, offline = ? WHERE tx = ?",
        (checked_at, device, int(offline), receipt.tx),
    )
    return Reply(
        200,
        {
            "status": "checked",
            "tx": receipt.tx,
            "amount_cents": row["amount_cents"],
            "venue_name": _venue_name(conn, venue),
            "paid_at": rfc3339(row["paid_at"]),
            "checked_at": rfc3339(checked_at),
            "checked_by": device,
        },
    )


def _record_conflict(
    conn: sqlite3.Connection, tx: str, device: str, scanned_at: float, now: float
) -> None:
    conn.execute("UPDATE transactions SET conflict = 1 WHERE tx = ?", (tx,))
    conn.execute(
        "INSERT INTO conflicts(tx, device, scanned_at, recorded_at) VALUES (?, ?, ?, ?)",
        (tx, device, scanned_at, now),
    )


def charge(
    conn: sqlite3.Connection,
    *,
    venue: str,
    device: str,
    service: str,
    amount_cents: int,
    paycode_jti: str | None,
    code: str | None,
    now: float,
    new_tx: str,
) -> Reply:
    """Charge a paycode for a service: 201, 402, 409, 410 or 422 (not_eligible / invalid)."""
    srv = conn.execute(
        "SELECT * FROM services WHERE venue = ? AND id = ?", (venue, service)
    ).fetchone()
    if srv is None:
        return error(422, "invalid", f"no service {service!r} here", reason="unknown_service")
    if amount_cents != srv["price_cents"]:
        return error(
            422,
            "invalid",
            f"{service} costs {srv['price_cents']} cents, not {amount_cents}",
            reason="amount_mismatch",
        )
    if paycode_jti is not None:
        pc = conn.execute("SELECT * FROM paycodes WHERE jti = ?", (paycode_jti,)).fetchone()
    else:
        pc = conn.execute("SELECT * FROM paycodes WHERE code = ?", (code,)).fetchone()
    if pc is None:
        return error(422, "invalid", "no such payment code", reason="unknown_code")
    if now > pc["expires_at"]:
        return error(410, "paycode_expired", "the payment code has expired; ask for a new one")
    if pc["used_by"] is not None:
        return error(409, "paycode_used", "the payment code was already charged")
    if not srv["eligible"] or srv["benefit"] != pc["benefit"]:
        return error(422, "not_eligible", f"the {pc['benefit']} benefit does not pay for {service}")
    if pc["balance_cents"] < amount_cents:
        return error(
            402, "insufficient_funds", "not enough balance", balance_cents=pc["balance_cents"]
        )
    conn.execute(
        "UPDATE paycodes SET balance_cents = balance_cents - ?, used_by = ? WHERE jti = ?",
        (amount_cents, new_tx, pc["jti"]),
    )
    conn.execute(
        "INSERT INTO transactions(tx, kind, venue, amount_cents, benefit, state, paid_at, at,"
        " device, service, paycode) VALUES (?, ?, ?, ?, ?, 'charged', ?, ?, ?, ?, ?)",
        (
            new_tx,
            TxKind.CHARGE,
            venue,
            amount_cents,
            pc["benefit"],
            now,
            now,
            device,
            service,
            pc["jti"],
        ),
    )
    return Reply(
        201,
        {
            "status": "charged",
            "tx": new_tx,
            "amount_cents": amount_cents,
            "charged_at": rfc3339(now),
            "service": service,
        },
    )


def cancel(conn: sqlite3.Connection, *, venue: str, tx: str, reason: str, now: float) -> Reply:
    """Cancel a transaction of *venue* on the day of its payment or check: 200, 404 or 409."""
    row = conn.execute(
        "SELECT * FROM transactions WHERE tx = ? AND venue = ?", (tx, venue)
    ).fetchone()
    if row is None:
        return error(404, "not_found", f"no transaction {tx} at this venue")
    if row["state"] == "cancelled":
        return error(
            409, "not_cancellable", "the transaction is already cancelled",
            reason="already_cancelled",
        )  # fmt: skip
    today = CancelDay.date_of(now)
    days = {CancelDay.date_of(row["paid_at"])}
    if row["at"] is not None:
        days.add(CancelDay.date_of(row["at"]))
    if today not in days:
        return error(
            409, "not_cancellable", "only same-day transactions can be cancelled",
            reason="not_same_day",
        )  # fmt: skip
    conn.execute(
        "UPDATE transactions SET state = 'cancelled', cancelled_at = ?, cancel_reason = ?,"
        " at = COALESCE(at, ?) WHERE tx = ?",
        (now, reason, now, tx),
    )
    _refund(conn, TxKind(row["kind"]), row)
    return Reply(200, {"status": "cancelled", "tx": tx, "cancelled_at": rfc3339(now)})


def _refund(conn: sqlite3.Connection, kind: TxKind, row: sqlite3.Row) -> None:
    """Give back what a cancelled transaction of *kind* took."""
    match kind:
        case TxKind.CHARGE:
            # The amount goes back to the benefit balance; the one-time code stays used.
            conn.execute(
                "UPDATE paycodes SET balance_cents = balance_cents + ?"
                " WHERE jti = ? AND used_by = ?",
                (row["amount_cents"], row["paycode"], row["tx"]),
            )
        case TxKind.RECEIPT:
            pass  # this backend keeps no balance for a receipt's payment: nothing to give back
        case _:
            assert_never(kind)


def encode_cursor(at: float, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, seq]).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[float, int]:
    """The position a cursor stands for. Raises ValueError for anything not ours."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    value = json.loads(raw)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int | float)
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
    ):
        raise ValueError("not a cursor")
    return float(value[0]), value[1]


def history(
    conn: sqlite3.Connection,
    *,
    venue: str,
    since: float | None,
    limit: int,
    after: tuple[float, int] | None,
) -> Reply:
    """The venue's transactions, newest first, one page of at most *limit* items."""
    sql = "SELECT * FROM transactions WHERE venue = ? AND state != 'paid'"
    args: list[Any] = [venue]
    if since is not None:
        sql += " AND at >= ?"
        args.append(since)
    if after is not None:
        sql += " AND (at < ? OR (at = ? AND seq < ?))"
        args += [after[0], after[0], after[1]]
    sql += " ORDER BY at DESC, seq DESC LIMIT ?"
    args.append(limit + 1)
    rows = conn.execute(sql, args).fetchall()
    page = rows[:limit]
    items = [
        {
            "tx": r["tx"],
            "kind": r["kind"],
            "amount_cents": r["amount_cents"],
            "status": r["state"],
            "at": rfc3339(r["at"]),
            "device": r["device"],
            "offline": bool(r["offline"]),
            "conflict": bool(r["conflict"]),
        }
        for r in page
    ]
    more = len(rows) > limit
    next_cursor = encode_cursor(page[-1]["at"], page[-1]["seq"]) if more else None
    return Reply(200, {"items": items, "next": next_cursor})
