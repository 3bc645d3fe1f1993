"""What the engine is given: its settings, and the screen and signal ports it drives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kiosk.views import TechInfo, View

__all__ = ["EngineSettings", "Screen", "Signals"]


class Screen(Protocol):
    def show(self, view: View) -> None: ...
    def dim(self, dimmed: bool) -> None: ...


class Signals(Protocol):
    def signal(self, kind: str) -> None: ...


@dataclass(frozen=True)
class EngineSettings:
    result_seconds: float = 4.0
    dim_after: float = 300.0
    has_buttons: bool = False
    repeat_windows: tuple[tuple[str, float], ...] = (("camera", 5.0),)
    default_repeat_window: float = 3.0
    # The event sources of the configured inputs; with more than one, a source that goes
    # away is an alarm for a while only: the others still read codes.
    sources: tuple[str, ...] = ()
    tech_info: Callable[[], TechInfo] | None = None
