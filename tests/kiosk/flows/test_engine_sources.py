"""Several sources feed the engine: a code read by two of them is one scan, and one
source going away leaves the others reading."""

from __future__ import annotations

import time
from typing import Any

from kiosk.events import ScanFault
from kiosk.flows.engine import ALARM_S
from kiosk.journal import Journal
from kiosk.views import Alarm, Ready
from refbackend import DEMO_VENUE


def unplug(sim: Any, source: str) -> Alarm:
    sim.counter.submit(ScanFault(source, "unplugged", sim.clock(), "read failed: EIO"))
    return sim.wait_view(Alarm)


def wait_ready(sim: Any, timeout: float = 5.0) -> bool:
    """Whether the ready screen comes back within *timeout* (s of real time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(sim.counter.screen.last_view, Ready):
            return True
        time.sleep(0.05)
    return False


def test_the_camera_and_the_scanner_reading_one_receipt_check_it_once(make_sim: Any) -> None:
    sim = make_sim(scanner={"source": ["camera", "serial"], "repeat_window_scanner": 3.0})
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    assert sim.scan(token, "camera").word == "checked"
    sim.advance(4.0)  # past the scanner's 3 s, within the camera's 5 s
    sim.submit_scan(token, "serial")
    other_tx, other = sim.backend.mint_receipt(DEMO_VENUE, 5500)
    time.sleep(0.5)  # handled on its own, not dropped as a stale scan behind the next one
    sim.advance(0.1)
    following = sim.scan(other, "serial")  # the next outcome: none came for the repeat
    assert (following.word, following.tx) == ("checked", other_tx)
    with Journal.open(sim.cfg.journal.path) as journal:
        assert [o.outcome for o in journal.outcomes() if o.tx == tx] == ["checked"]


def test_one_source_unplugged_is_a_passing_alarm_while_another_reads(make_sim: Any) -> None:
    sim = make_sim(scanner={"source": ["camera", "serial"]})
    alarm = unplug(sim, "serial")
    assert alarm.kind == "scanner"
    sim.advance(ALARM_S + 1)
    assert wait_ready(sim)  # the camera still reads: back to the ready screen
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    assert sim.scan(token, "camera").word == "checked"
    unplug(sim, "camera")  # now none is left: the alarm stays
    sim.advance(ALARM_S + 1)
    assert not wait_ready(sim, 1.5)
    assert isinstance(sim.counter.screen.last_view, Alarm)


def test_the_only_source_unplugged_keeps_its_alarm(make_sim: Any) -> None:
    sim = make_sim(scanner={"source": "serial"})
    unplug(sim, "serial")
    sim.advance(ALARM_S + 1)
    assert not wait_ready(sim, 1.5)
    sim.counter.submit(ScanFault("serial", "replugged", sim.clock()))
    assert wait_ready(sim)
