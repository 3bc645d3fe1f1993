"""Events that input devices push towards the engine's inbox.

Sources never see outcomes; they only produce these values (one-way path).
``at`` is ``time.monotonic()`` when the event was read. ``source`` names the
configured source that read it (:func:`kiosk.sources.event_source`; ``script`` for
the simulated scanner of ``kiosk demo`` and the tests).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scan:
    """Text read from a code, exactly as encoded (terminators removed)."""

    text: str
    source: str
    at: float


@dataclass(frozen=True)
class ScanFault:
    """A read that could not become text, or a source that went away.

    ``reason``: ``too_long``, ``binary``, ``not_utf8``, ``partial`` (a line without its
    terminator timed out), ``unplugged``, ``replugged``.
    """

    source: str
    reason: str
    at: float
    detail: str = ""


@dataclass(frozen=True)
class Press:
    """A button press: ``button`` is ``up``, ``down`` or ``ok``; ``long`` for a long press."""

    button: str
    at: float
    long: bool = False


Event = Scan | ScanFault | Press
