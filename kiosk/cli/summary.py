"""`kiosk history --local --summary [--since T] [--json]`: the day report of this device.

The figures of :mod:`kiosk.day_report`, from the rows ``history --local --csv``
lists for the same period; without ``--since`` the period is today (local time).
A period the journal no longer holds whole (pruned) exits 1 with what to do.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.cli._common import iso, print_json
from kiosk.day_report import Count, DayFigures, figures, local_midnight, period_rows


def report(ctx: Any, since: datetime | None, *, as_json: bool) -> int:
    """Print the day report of *ctx*'s journal from *since* (default: local midnight)."""
    cfg = ctx.cfg
    tz = ZoneInfo(cfg.device.timezone)
    now = time.time()
    start = since.timestamp() if since is not None else local_midnight(now, tz)
    rows = period_rows(ctx.journal, start, now=now, retention_days=cfg.journal.retention_days)
    day = figures(rows)
    if as_json:
        print_json(dict(day.as_json(), device=cfg.device.id, since=iso(start), until=iso(now)))
        return 0
    for line in lines(day, device=cfg.device.id, since=start, until=now, tz=tz):
        print(line)
    return 0


def lines(day: DayFigures, *, device: str, since: float, until: float, tz: ZoneInfo) -> list[str]:
    """The report as text, amounts in euros with two decimals."""

    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")

    def row(label: str, c: Count, *, minus: bool = False) -> str:
        cents = -c.cents if minus else c.cents
        return f"{label:<42} {c.count:>5} {cents / 100:>10.2f}"

    out = [
        f"Day report of {device}, {when(since)} to {when(until)} ({tz.key})",
        row("checked receipts", day.receipts),
        row("  of them accepted offline", day.offline),
        row("charges", day.charges),
        row("cancels", day.cancels, minus=True),
        f"{'total':<42} {'':>5} {day.total_cents / 100:>10.2f}",
        "per service (receipts whose amount matched, and charges; not cancelled):",
    ]
    out += [row(f"  {name}", c) for name, c in day.services]
    out += [
        row("  amount not matched to a service", day.unmatched),
        row("offline acceptances waiting for upload", day.waiting_upload),
        row("conflicts (not counted above)", day.conflicts),
        row("late answers (customer saw needs_network)", day.late_answers),
    ]
    return out
