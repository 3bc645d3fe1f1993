"""The technician's side of the counter: the technician screen, scanner sources gone away."""

from __future__ import annotations

from dataclasses import replace

from kiosk.flows.context import FlowContext
from kiosk.flows.offline import conflicts_24h
from kiosk.views import TechInfo

TECH_SCREEN_S = 30.0


def tech_info(ctx: FlowContext, info: TechInfo) -> TechInfo:
    """The technician screen with this device's conflicts of the last 24 h."""
    count = conflicts_24h(ctx.journal, ctx.clock())
    return replace(info, conflicts_24h=count, offline_off=ctx.policy.conflicts_reached(count))


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
