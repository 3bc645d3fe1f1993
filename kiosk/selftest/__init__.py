"""``kiosk selftest``: one PASS / FAIL / SKIP line per part, each FAIL saying what to do next.

Parts, in order: scanner (one line per scanner source), camera, display,
LED, buzzer, buttons, backend (reachability), auth (client id, secret and
venue), JWKS, clock, journal, disk. ``SKIP`` is a part that is not fitted (a
pin of -1, no camera when the scanner is serial) or a backend step that could
not be reached.

Every lower layer comes from :class:`Drivers` (R1): the defaults open the real
devices named by the configuration; :func:`simulated` gives the twins (luma
``dummy`` display, gpiozero ``MockFactory`` pins, a ``loop://`` serial port,
the script scanner, a replayed camera frame). The backend, clock, journal and
disk checks always run for real, also with ``--simulate``.

Each check runs on its own short-lived thread and is given up after
``Drivers.part_timeout`` seconds, so a hung camera or bus never hangs the tool.
A check may briefly light the LED, sound the buzzer and re-initialise the panel.
While ``kiosk run`` holds the camera or the pins, those checks fail with a hint
to stop the service first; the journal check only reads the journal (it migrates and
checks a copy beside it).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from functools import partial

from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.selftest.base import FAIL, PARTS, PASS, SKIP, Drivers, PartResult, simulated
from kiosk.selftest.devices import (
    check_buttons,
    check_buzzer,
    check_display,
    check_led,
)
from kiosk.selftest.services import check_backend, check_clock, check_disk, check_journal
from kiosk.selftest.sources import check_camera, check_scanner, scanner_sources

__all__ = [
    "FAIL",
    "PARTS",
    "PASS",
    "SKIP",
    "Drivers",
    "PartResult",
    "run_selftest",
    "simulated",
    "summary",
]


def run_selftest(cfg: Config, drivers: Drivers | None = None) -> list[PartResult]:
    """Check every part in :data:`PARTS` order. Never raises for a failing part."""
    d = drivers or Drivers()
    with warnings.catch_warnings():
        # gpiozero warns once per pin library it could not load; the report says it better.
        warnings.simplefilter("ignore")
        results = _hardware(cfg, d)
    if d.simulated:
        results = [
            PartResult(r.part, r.status, f"{r.detail} [simulated]") if r.status == PASS else r
            for r in results
        ]
    backend = ("backend", "auth", "jwks")
    results.extend(_bounded_many(backend, lambda: check_backend(cfg, d), d.part_timeout))
    results.append(_bounded("clock", lambda: check_clock(d), d.part_timeout))
    results.append(_bounded("journal", lambda: check_journal(cfg), d.part_timeout))
    results.append(_bounded("disk", lambda: check_disk(cfg, d), d.part_timeout))
    return results


def _hardware(cfg: Config, d: Drivers) -> list[PartResult]:
    results: list[PartResult] = []
    camera = _bounded("camera", lambda: check_camera(cfg, d), d.part_timeout)
    # One scanner line per scanner source (serial and hid together give two).
    for source in scanner_sources(cfg) or (None,):
        scanner = partial(check_scanner, cfg, d, camera, source)
        results.append(_bounded("scanner", scanner, d.part_timeout))
    results.append(camera)
    checks: tuple[tuple[str, Callable[[Config, Drivers], PartResult]], ...] = (
        ("display", check_display),
        ("led", check_led),
        ("buzzer", check_buzzer),
        ("buttons", check_buttons),
    )
    for part, check in checks:
        results.append(_bounded(part, partial(check, cfg, d), d.part_timeout))
    return results


def summary(results: list[PartResult]) -> str:
    counts = {s: sum(1 for r in results if r.status == s) for s in (PASS, FAIL, SKIP)}
    return f"selftest: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"


def _bounded(part: str, check: Callable[[], PartResult], timeout: float) -> PartResult:
    return _bounded_many((part,), lambda: [check()], timeout)[0]


def _bounded_many(
    parts: tuple[str, ...], check: Callable[[], list[PartResult]], timeout: float
) -> list[PartResult]:
    """Run *check* on a helper thread for at most *timeout* seconds; never raises."""
    box: list[list[PartResult]] = []

    def run() -> None:
        try:
            box.append(check())
        except KioskError as exc:
            box.append([PartResult(p, FAIL, str(exc)) for p in parts])
        except Exception as exc:  # a driver failing in a way nobody foresaw: still one line
            text = f"unexpected {type(exc).__name__}: {exc}"
            box.append([PartResult(p, FAIL, text) for p in parts])

    thread = threading.Thread(target=run, name=f"selftest-{parts[0]}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not box:
        hung = f"no answer within {timeout:.0f} s; the device or the network hangs"
        return [PartResult(p, FAIL, f"{hung}: check the cables and backend.url") for p in parts]
    return box[0]


# --- hardware ----------------------------------------------------------------------------------
