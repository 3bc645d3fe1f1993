"""`kiosk history`: transactions from the backend, or this device's journal with --local.

``--csv`` is the daily settlement export a studio hands its cash register:
one row per transaction, amounts in euros with two decimals, local times.
Every cell that a spreadsheet would read as a formula (starting with ``=``, ``+``,
``-`` unless it is a number, ``@``, a tab or a carriage return) gets a leading
``'``, so a device name or transaction id from the backend is shown as text.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.backend._wire import format_time
from kiosk.cli._common import add_config_arg
from kiosk.journal import OutcomeRow
from kiosk.journal.money import late_answer, money_cents
from kiosk.vocabulary import (
    PAYMENT_KINDS,
    AmountCheck,
    RequestKind,
    Word,
    is_payment,
    meaning,
)

CSV_FIELDS = (
    "tx",
    "kind",
    "outcome",
    "amount_eur",
    "time_local",
    "synced",
    "device",
    "offline",
    "conflict",
    "service",
    "amount_check",
    "amount_difference_eur",
    "late_answer",
    "money_eur",
)
_LOCAL_KEYS = (
    "tx",
    "kind",
    "outcome",
    "amount_cents",
    "at",
    "synced",
    "reason",
    "service",  # what was paid for: the charged service, a receipt's matched or nearest one
    "amount_check",  # a checked receipt against the price list: ok, mismatch or null
    "amount_difference_cents",  # the amount minus the nearest service's price (0 when ok)
    "late_answer",  # an acceptance that arrived after the customer was shown needs_network
    "shown",  # the word the customer was shown (differs for late answers and conflicts)
    "money_cents",  # what the row adds to the settlement: one row of money per transaction
)
_DEFAULT_LIMIT = 500
_EXPORT_MAX = 1_000_000  # rows of one settlement export (a studio scans a few hundred a day)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def register(sub: Any) -> None:
    p = sub.add_parser("history", help="list transactions")
    add_config_arg(p)
    p.add_argument("--local", action="store_true", help="this device's journal, not the backend")
    fmt = p.add_mutually_exclusive_group()
    p.add_argument("--json", action="store_true", help="print one JSON document")
    fmt.add_argument("--csv", action="store_true", help="settlement export as CSV")
    fmt.add_argument(
        "--summary",
        action="store_true",
        help="with --local: the day report (today, or from --since), from the --csv rows",
    )
    p.add_argument("--since", help="RFC 3339 time, a date (YYYY-MM-DD) or 'today'")
    p.add_argument(
        "--limit",
        type=int,
        help="list at most this many (1..10000, default 500); --csv is the whole period,"
        " and fails rather than cut it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import flow_context, load, parse_since

    cfg = load(args)
    explicit_limit = args.limit is not None
    if not explicit_limit:
        args.limit = _DEFAULT_LIMIT
    if not 1 <= args.limit <= 10_000:
        print("--limit: must be between 1 and 10000", file=sys.stderr)
        return 2
    if args.json and args.csv:
        print("--json and --csv: choose one", file=sys.stderr)
        return 2
    if args.summary and not args.local:
        print("--summary reads this device's journal: add --local", file=sys.stderr)
        return 2
    since = parse_since(args.since, cfg.device.timezone)
    tz = ZoneInfo(cfg.device.timezone)
    if args.summary:
        from kiosk.cli.summary import report

        with flow_context(cfg) as ctx:
            return report(ctx, since, as_json=args.json)
    # a settlement export is the whole period: fetch one more than the limit to see a cut
    limit = _EXPORT_MAX if args.csv and not explicit_limit else args.limit
    with flow_context(cfg) as ctx:
        if args.csv and args.local and since is not None:  # a period the journal holds whole
            from kiosk.day_report import check_complete

            check_complete(
                ctx.journal,
                since.timestamp(),
                now=time.time(),
                retention_days=cfg.journal.retention_days,
            )
        items = _local(ctx, since, limit + 1) if args.local else _remote(ctx, since, limit + 1)
    if len(items) > limit:
        if args.csv:
            print(
                f"the period holds more than {limit} transactions; a settlement export is"
                " never cut: narrow it with --since"
                + (" or raise --limit" if limit < _EXPORT_MAX else ""),
                file=sys.stderr,
            )
            return 1
        items = items[:limit]
        print(
            f"showing the newest {limit} only: more are in the period (see --limit, --since)",
            file=sys.stderr,
        )
    if args.json:
        from kiosk.cli._common import print_json

        print_json({"items": [_public(i, args.local) for i in items]})
    elif args.csv:
        _write_csv(items, tz, cfg.device.id)
    else:
        for i in items:
            amount = "-" if i["amount_cents"] is None else f"{i['amount_cents'] / 100:.2f}"
            print(
                f"{_local_time(i['at'], tz)}  {i['kind']:<7} {i['outcome']:<18} "
                f"{amount:>8}  {i['tx'] or '-'}{'' if i['synced'] else '  (not uploaded)'}"
                f"{_paid_for(i)}{_late(i)}"
            )
    return 0


def _local(ctx: Any, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    from kiosk.cli._common import iso

    rows = ctx.journal.outcomes(since.timestamp() if since else None, limit)
    return [
        {
            "tx": r.tx,
            "kind": _kind(ctx, r),
            "outcome": r.outcome,
            "amount_cents": r.amount_cents,
            "at": iso(r.at),
            "synced": r.synced,
            "device": ctx.cfg.device.id,
            "offline": meaning(r.outcome).offline,
            "conflict": r.outcome == Word.CONFLICT,
            "reason": r.reason,
            "action": r.kind,
            "service": r.service or None,
            "amount_check": r.amount_check,
            "amount_difference_cents": r.amount_difference_cents,
            "late_answer": late_answer(r),
            "shown": _shown(r),
            "money_cents": money_cents(r),
        }
        for r in rows
    ]


def _shown(row: OutcomeRow) -> Word:
    """What the customer saw: a late answer's needs_network, a conflict's offline acceptance."""
    if late_answer(row):
        return Word.NEEDS_NETWORK
    if row.outcome == Word.CONFLICT:
        return Word.CHECKED_OFFLINE
    return row.outcome


def _kind(ctx: Any, row: OutcomeRow) -> RequestKind:
    """A payment's kind; a cancel takes the kind of the payment it cancelled, found among
    this journal's payments (``receipt`` when the journal holds none: a cancel of a
    receipt another device or ``kiosk cancel`` accepted)."""
    if is_payment(row.kind):
        return row.kind
    for kind in PAYMENT_KINDS if row.tx is not None else ():
        if ctx.journal.last_request_for(kind, row.tx) is not None:
            return kind
    return RequestKind.RECEIPT


def _remote(ctx: Any, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while len(items) < limit:
        page = ctx.client.history(
            ctx.cfg.device.venue, since=since, limit=min(500, limit - len(items)), cursor=cursor
        )
        for h in page.items:
            items.append(
                {
                    "tx": h.tx,
                    "kind": h.kind,
                    "outcome": h.status,
                    "amount_cents": h.amount_cents,
                    "at": format_time(h.at),
                    "synced": True,
                    "device": h.device,
                    "offline": h.offline,
                    "conflict": h.conflict,
                    # a transaction the backend still counts; a cancelled one nets to nothing
                    "money_cents": h.amount_cents if meaning(Word(h.status)).payment else 0,
                }
            )
        cursor = page.next
        if not cursor or not page.items:
            break
    return items


def _public(item: dict[str, Any], local: bool) -> dict[str, Any]:
    if local:
        return {k: item[k] for k in _LOCAL_KEYS}
    return {
        "tx": item["tx"],
        "kind": item["kind"],
        "status": item["outcome"],
        "amount_cents": item["amount_cents"],
        "at": item["at"],
        "device": item["device"],
        "offline": item["offline"],
        "conflict": item["conflict"],
    }


def _local_time(at: str | None, tz: ZoneInfo) -> str:
    if at is None:
        return "-"
    return (
        datetime.fromisoformat(at.replace("Z", "+00:00"))
        .astimezone(tz)
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def _write_csv(items: list[dict[str, Any]], tz: ZoneInfo, device: str) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for i in items:
        amount = _euros(i["amount_cents"])
        cells = [
            i["tx"] or "",
            i["kind"],
            i["outcome"],
            amount,
            _local_time(i["at"], tz),
            "yes" if i["synced"] else "no",
            i.get("device") or device,
            "yes" if i["offline"] else "no",
            "yes" if i["conflict"] else "no",
            i.get("service") or "",
            i.get("amount_check") or "",
            _euros(i.get("amount_difference_cents")),
            "yes" if i.get("late_answer") else "no",
            _euros(i.get("money_cents") or None),
        ]
        writer.writerow([spreadsheet_text(str(c)) for c in cells])


def _paid_for(item: dict[str, Any]) -> str:
    service, check = item.get("service"), item.get("amount_check")
    if check == AmountCheck.MISMATCH:
        difference = _euros(item.get("amount_difference_cents"))
        return f"  CHECK THE AMOUNT: nearest {service} ({difference})"
    return f"  {service}" if service else ""


def _late(item: dict[str, Any]) -> str:
    if not item.get("late_answer"):
        return ""
    return f"  LATE ANSWER: the customer was shown {item['shown']}"


def _euros(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def spreadsheet_text(cell: str) -> str:
    """*cell* with a leading ``'`` when a spreadsheet would run it as a formula."""
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
