"""The engine's inbox and modes, without a running engine thread."""

from __future__ import annotations

import threading

from kiosk.events import Press, Scan
from kiosk.flows import modes
from kiosk.flows.engine import INBOX_SIZE, Engine
from kiosk.flows.wiring import EngineSettings
from kiosk.tokens import BareCode
from kiosk.venue import Service
from kiosk.views import View


class _Screen:
    def show(self, view: View) -> None:
        pass

    def dim(self, dimmed: bool) -> None:
        pass


class _Signals:
    def signal(self, kind: str) -> None:
        pass


def _engine() -> Engine:
    def no_context():  # type: ignore[no-untyped-def]
        raise AssertionError("the engine thread is not started in these tests")

    return Engine(no_context, screen=_Screen(), signals=_Signals(), settings=EngineSettings())


def test_racing_sources_never_get_queue_full() -> None:
    engine = _engine()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def source(n: int) -> None:
        start.wait()
        try:
            for i in range(3000):
                engine.submit(Scan(f"{n}-{i}", "script", float(i)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=source, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert engine.inbox.qsize() == INBOX_SIZE  # full, oldest dropped
    newest = [engine.inbox.get_nowait() for _ in range(INBOX_SIZE)]
    assert all(isinstance(e, Scan) for e in newest)


def test_a_full_inbox_drops_the_oldest_event() -> None:
    engine = _engine()
    for i in range(INBOX_SIZE):
        engine.submit(Press("up", float(i)))
    engine.submit(Press("ok", 99.0))
    events = [engine.inbox.get_nowait() for _ in range(INBOX_SIZE)]
    assert events[0] == Press("up", 1.0)
    assert events[-1] == Press("ok", 99.0)


def test_menu_mode_moves_around_its_services() -> None:
    services = tuple(Service(f"s{i}", f"S{i}", 1000 * (i + 1)) for i in range(3))
    menu = modes.Choosing(10.0, BareCode("123456789012"), services)
    assert menu.service == services[0]
    up = menu.moved(-1, until=20.0)
    assert (up.selected, up.until, up.service) == (2, 20.0, services[2])
    assert up.moved(1, until=30.0).selected == 0
