"""The staff's and technician's side of the counter: the technician screen, the day report,
scanner sources gone away."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from kiosk.day_report import figures, local_midnight, period_rows
from kiosk.flows.context import FlowContext
from kiosk.flows.offline import conflicts_24h
from kiosk.journal.repair import last_recovery
from kiosk.views import DayReport, TechInfo

TECH_SCREEN_S = 30.0
SALVAGE_SHOWN_S = 7 * 24 * 3600.0  # how long the technician screen tells of a salvage
REPORT_S = 120.0  # the day report stays up this long without a press


def tech_info(ctx: FlowContext, info: TechInfo) -> TechInfo:
    """The technician screen with this device's conflicts of the last 24 h, and a journal
    salvaged in the last week (rows kept and lost)."""
    count = conflicts_24h(ctx.journal, ctx.clocks())
    info = replace(info, conflicts_24h=count, offline_off=ctx.policy.conflicts_reached(count))
    recovery = last_recovery(ctx.journal.get_meta)
    if (
        recovery is not None
        and recovery.how == "salvaged"
        and 0 <= ctx.clock() - recovery.at < SALVAGE_SHOWN_S
    ):
        info = replace(
            info, journal_salvaged=recovery.rows_salvaged, journal_lost=recovery.rows_lost
        )
    return info


def day_report(ctx: FlowContext) -> DayReport:
    """Today's figures (since local midnight), from the rows ``history --local --csv``
    lists, first page. Raises JournalError."""
    now = ctx.clock()
    since = local_midnight(now, ctx.tz)
    rows = period_rows(ctx.journal, since, now=now, retention_days=ctx.cfg.journal.retention_days)
    return DayReport(datetime.fromtimestamp(now, ctx.tz), figures(rows))


def turned(report: DayReport, button: str) -> DayReport:
    """The report's next page (``down``) or previous one (``up``), round."""
    step = 1 if button == "down" else -1
    return replace(report, page=(report.page + step) % report.pages)


class UnpluggedSources:
    """The configured event sources, and which reported "unplugged" and not "replugged"."""

    def __init__(self, sources: tuple[str, ...]) -> None:
        self._all = set(sources)
        self._down: set[str] = set()

    def unplugged(self, source: str) -> bool:
        """Note *source* gone; True if another source still reads codes."""
        self._down.add(source)
        return bool(self._all - self._down)

    def replugged(self, source: str) -> None:
        self._down.discard(source)
