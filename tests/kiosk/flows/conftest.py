"""A simulated kiosk counter against the reference backend on 127.0.0.1."""

from __future__ import annotations

import queue
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.backend.client import BackendClient
from kiosk.config import Config, Secret, parse_config
from kiosk.events import Press, Scan
from kiosk.journal import Journal
from kiosk.rig import SimulatedRig
from kiosk.views import Outcome, View
from refbackend import DEMO_VENUE, ReferenceBackend

WAIT_S = 15.0


def kiosk_config(
    tmp_path: Path,
    backend: ReferenceBackend,
    client: tuple[str, str],
    /,
    **sections: dict[str, Any],
) -> Config:
    secret = tmp_path / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    raw: dict[str, Any] = {
        "device": {"id": "counter-1", "venue": DEMO_VENUE, "default_service": "classic-60"},
        "backend": {
            "url": backend.url,
            "client_id": client[0],
            "client_secret_file": str(secret),
            "issuer": backend.issuer,
            "connect_timeout": 0.5,
            "read_timeout": 2.0,
        },
        "scanner": {"repeat_window_scanner": 0.3},
        "display": {"driver": "none", "result_seconds": 30.0},
        "signals": {
            "led_pin": 17,
            "buzzer_pin": 18,
            "button_up": 5,
            "button_down": 6,
            "button_ok": 13,
        },
        "journal": {"path": str(tmp_path / "journal.db"), "min_free_mb": 0},
        "metrics": {"textfile": ""},  # never node_exporter's folder of this machine
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw)


class SteppedClock:
    """A monotonic clock that runs with real time and can be stepped forward by tests."""

    def __init__(self) -> None:
        self._offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


class SignalLog:
    """The rig's indicators, with the kinds of every signal they were asked to play."""

    def __init__(self, indicators: Any) -> None:
        self._indicators = indicators
        self.kinds: list[str] = []

    def signal(self, kind: str) -> None:
        self.kinds.append(kind)
        self._indicators.signal(kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._indicators, name)


class Sim:
    """Drives a running Counter like a customer and a studio would."""

    def backend_rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of the reference backend's database, read-only: what it really did."""
        conn = sqlite3.connect(f"file:{self.backend.db}?mode=ro", uri=True, timeout=5.0)
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, args))
        finally:
            conn.close()

    def journal_rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of the kiosk's journal."""
        with Journal.open(self.cfg.journal.path) as journal:
            return list(journal.conn.execute(sql, args))

    def __init__(self, cfg: Config, backend: ReferenceBackend, *, buttons: bool = True) -> None:
        self.cfg = cfg
        self.backend = backend
        self.clock = SteppedClock()
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.views: queue.Queue[View] = queue.Queue()
        self.rig = SimulatedRig(cfg.signals)
        self.factory = self.rig.factory
        self.display = self.rig.display
        self.signals = SignalLog(self.rig.indicators)
        self.rig.indicators = self.signals
        self.indicators = self.signals
        self.counter = self.rig.counter(
            cfg,
            has_buttons=buttons,
            on_outcome=self.outcomes.put,
            on_view=self.views.put,
            sync_interval=0.5,
            monotonic=self.clock,
        )

    def start(self) -> None:
        self.counter.start()

    def stop(self) -> None:
        self.counter.stop()
        self.rig.close()

    def scan(self, text: str, source: str = "script") -> Outcome:
        self.submit_scan(text, source)
        return self.outcome()

    def submit_scan(self, text: str, source: str = "script") -> None:
        self.counter.submit(Scan(text, source, self.clock()))

    def press(self, button: str, long: bool = False) -> None:
        self.counter.submit(Press(button, self.clock(), long=long))

    def advance(self, seconds: float) -> None:
        """Step the counter's clock (repeat windows, menu and result timeouts)."""
        self.clock.advance(seconds)

    def outcome(self, timeout: float = WAIT_S) -> Outcome:
        return self.outcomes.get(timeout=timeout)

    def wait_view(self, kind: type, timeout: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            view = self.views.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(view, kind):
                return view

    def wait_venue_fetched(self, timeout: float = WAIT_S) -> None:
        """Until the sync worker's first fetch of the venue is done: the last request it
        makes of its own while nothing waits for an upload, so that a fault set from now
        on (``faults.delay_s`` and its ``delaying``) meets the scans' requests only."""
        deadline = time.monotonic() + timeout
        while self.counter.venue.fetched_at == 0.0:
            assert time.monotonic() < deadline, "the venue was never fetched"
            time.sleep(0.01)

    def in_progress_at_backend(self, tx: str) -> bool:
        """The kiosk's request for *tx* reached the backend, which has not answered it yet
        (its Idempotency-Key claimed, no answer stored)."""
        sent = self.journal_rows("SELECT idem_key FROM requests WHERE tx = ?", (tx,))
        claimed = "SELECT 1 FROM idempotency WHERE key = ? AND code IS NULL"
        return any(self.backend_rows(claimed, (row["idem_key"],)) for row in sent)

    def wait_synced(self, timeout: float = WAIT_S) -> None:
        """Until the journal holds no request waiting for the backend."""
        from kiosk.journal import Journal

        deadline = time.monotonic() + timeout
        with Journal.open(self.cfg.journal.path) as journal:
            while journal.pending_count():
                assert time.monotonic() < deadline, "journal not synced in time"
                self.counter.sync.wake()
                time.sleep(0.05)


@pytest.fixture
def make_sim(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> Iterator[Any]:
    sims: list[Sim] = []

    def make(buttons: bool = True, **sections: dict[str, Any]) -> Sim:
        cfg = kiosk_config(tmp_path, refbackend, demo_client, **sections)
        sim = Sim(cfg, refbackend, buttons=buttons)
        sims.append(sim)
        sim.start()
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_config(tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]) -> Any:
    """``make_config(**sections) -> Config`` for flows driven without a running counter."""

    def make(**sections: dict[str, Any]) -> Config:
        return kiosk_config(tmp_path, refbackend, demo_client, **sections)

    return make


@pytest.fixture
def sim(make_sim: Any) -> Sim:
    return make_sim()


@pytest.fixture
def other_counter(refbackend: ReferenceBackend) -> Iterator[BackendClient]:
    """Another kiosk of the studio, online."""
    client_id, secret = refbackend.create_client(DEMO_VENUE)
    with BackendClient(
        refbackend.url,
        client_id=client_id,
        client_secret=Secret(secret),
        session=requests.Session(),
    ) as client:
        yield client
