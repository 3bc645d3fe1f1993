"""``kiosk demo``: a scripted counter session on simulated hardware.

Starts the reference backend on a free loopback port, configures a kiosk
against it, and drives the very same :class:`~kiosk.counter.Counter` that
``kiosk run`` uses, through a scripted scanner and simulated buttons. Each
step prints a one-line transcript and the 128x64 screen (Unicode half-blocks),
and saves the screen as PNG under the output folder.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kiosk.config import Config, parse_config
from kiosk.events import Press, Scan
from kiosk.staff_pin import hash_pin
from kiosk.views import Outcome, ServiceMenu, View
from kiosk.vocabulary import Word

STEP_TIMEOUT_S = 20.0
DEMO_PIN = "1234"  # the demo's staff PIN for cancelling at the counter


@dataclass
class _Step:
    title: str
    expect: str
    got: str = ""


class _Session:
    """Drives one counter: scan, press, wait for what the screen shows."""

    def __init__(
        self, counter: Any, display: Any, out_dir: Path, stream: TextIO, lang: str
    ) -> None:
        self.counter = counter
        self.display = display
        self.out_dir = out_dir
        self.stream = stream
        self.lang = lang
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.views: queue.Queue[View] = queue.Queue()
        self.number = 0
        self.failures: list[str] = []

    def scan(self, text: str) -> None:
        self.counter.submit(Scan(text, "script", time.monotonic()))

    def press(self, button: str, long: bool = False) -> None:
        self.counter.submit(Press(button, time.monotonic(), long=long))

    def wait_outcome(self) -> Outcome:
        return self.outcomes.get(timeout=STEP_TIMEOUT_S)

    def wait_view(self, kind: type) -> Any:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            view = self.views.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(view, kind):
                return view

    def drain(self) -> None:
        for q in (self.outcomes, self.views):
            while not q.empty():
                q.get_nowait()

    def report(self, title: str, outcome_word: str, expect: str, detail: str = "") -> None:
        from kiosk import screens

        self.number += 1
        image = self.display.last_image
        name = f"{self.number:02d}-{expect}"
        image.save(self.out_dir / f"{name}.png")
        image.resize((image.width * 4, image.height * 4)).save(self.out_dir / f"{name}-x4.png")
        mark = "ok" if outcome_word == expect else f"EXPECTED {expect}"
        if outcome_word != expect:
            self.failures.append(f"step {self.number} {title}: got {outcome_word}")
        line = f"{self.number}. {title} -> {outcome_word}"
        print(f"{line}{'  ' + detail if detail else ''}  [{mark}]", file=self.stream)
        print(screens.to_terminal(image), file=self.stream)
        self.stream.flush()


def _config(
    url: str, issuer: str, client_id: str, secret_file: Path, journal: Path, lang: str
) -> Config:
    raw = {
        "device": {"id": "counter-1", "venue": "ven_demo0000000000"},
        "backend": {
            "url": url,
            "client_id": client_id,
            "client_secret_file": str(secret_file),
            "issuer": issuer,
            "connect_timeout": 1.0,
            "read_timeout": 3.0,
        },
        "scanner": {"source": "stdin", "repeat_window_scanner": 1.0},
        "display": {"driver": "none", "language": lang, "result_seconds": 30.0},
        "signals": {
            "led_pin": 17,
            "buzzer_pin": 18,
            "button_up": 5,
            "button_down": 6,
            "button_ok": 13,
        },
        "journal": {"path": str(journal), "min_free_mb": 1},
        "counter": {"cancel": "pin", "pin_hash": hash_pin(DEMO_PIN)},
    }
    return parse_config(raw, source="demo")


def run_demo(out_dir: Path, *, stream: TextIO = sys.stdout, lang: str = "fi") -> int:
    """Play the scripted session; returns 0 when every step ended as expected."""
    from kiosk.rig import SimulatedRig
    from refbackend import DEMO_VENUE, ReferenceBackend

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiosk-demo-") as tmp_name:
        tmp = Path(tmp_name)
        with ReferenceBackend(tmp / "backend.db", dev=True) as backend:
            client_id, secret = backend.create_client(DEMO_VENUE)
            secret_file = tmp / "client_secret"
            secret_file.write_text(secret)
            secret_file.chmod(0o600)
            cfg = _config(
                backend.url, backend.issuer, client_id, secret_file, tmp / "journal.db", lang
            )
            print(
                f"Reference backend on {backend.url}; kiosk counter-1 at "
                f"Hierontastudio Demo; screens saved in {out_dir}/",
                file=stream,
            )
            rig = SimulatedRig(cfg.signals)
            session: _Session
            counter = rig.counter(
                cfg,
                on_outcome=lambda o: session.outcomes.put(o),
                on_view=lambda v: session.views.put(v),
            )
            session = _Session(counter, rig.display, out_dir, stream, lang)
            counter.start()
            try:
                _script(session, backend, counter)
            except queue.Empty:
                session.failures.append("a step got no answer in time")
            finally:
                counter.stop()
                rig.close()
    if session.failures:
        print("Demo FAILED: " + "; ".join(session.failures), file=stream)
        return 1
    print(
        f"Demo finished: {session.number} steps, all as expected. Screens in {out_dir}/",
        file=stream,
    )
    return 0


def _script(s: _Session, backend: Any, counter: Any) -> None:
    from refbackend import DEMO_VENUE

    def receipt_step(
        title: str, token: str, expect: str, detail: Callable[[Outcome], str] = lambda o: o.tx or ""
    ) -> Outcome:
        s.drain()
        s.scan(token)
        outcome = s.wait_outcome()
        s.report(title, outcome.word, expect, detail(outcome))
        return outcome

    _, token = backend.mint_receipt(DEMO_VENUE, 6500)
    receipt_step("Receipt 65,00 EUR scanned", token, "checked")
    time.sleep(1.1)  # past the repeat window: a real rescan, not a double read
    receipt_step(
        "Same receipt shown again",
        token,
        "already_checked",
        lambda o: f"checked {o.checked_at:%H:%M} by {o.checked_by}",
    )

    other = backend.create_venue("Toinen Hierontastudio", "Muualla 2, 33100 Tampere")
    _, foreign = backend.mint_receipt(other["id"], 5000)
    receipt_step("Receipt of another studio", foreign, "wrong_venue", lambda o: o.venue_name)

    _, genuine = backend.mint_receipt(DEMO_VENUE, 9900)
    head, payload, sig = genuine.split(".")
    tampered = ".".join((head, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), sig))
    receipt_step("Tampered receipt (amount edited)", tampered, "invalid", lambda o: o.reason)

    _, offline_token = backend.mint_receipt(DEMO_VENUE, 5500)
    backend.pause()
    receipt_step("Network down: receipt 55,00 EUR", offline_token, "checked_offline")
    backend.resume()
    counter.sync.wake()
    deadline = time.monotonic() + STEP_TIMEOUT_S
    # The journal, not the worker's last report (it may predate the upload), says when
    # nothing is left; and payment codes need the counter to be back online.
    from kiosk.journal import Journal

    with Journal.open(counter.cfg.journal.path) as journal:
        while journal.pending_count() or counter.health.offline:
            if time.monotonic() > deadline:
                raise queue.Empty
            counter.sync.wake()
            time.sleep(0.2)
    print("   network back: offline check uploaded, 0 left", file=s.stream)

    _amount_step(s, backend, counter)
    services = [sv.id for sv in counter.venue.services]

    def pay(title: str, service_id: str, expect: str) -> Outcome:
        code = backend.mint_paycode(20000)
        s.drain()
        s.scan(code["token"])
        s.wait_view(ServiceMenu)
        for _ in range(services.index(service_id)):
            s.press("down")
        s.press("ok")
        if expect == "charged":
            from kiosk.views import ConfirmCharge

            s.wait_view(ConfirmCharge)
            s.press("ok")
        outcome = s.wait_outcome()
        s.report(title, outcome.word, expect, outcome.service_name)
        return outcome

    if not services:
        s.scan(backend.mint_paycode(20000)["token"])
        s.wait_view(ServiceMenu)
        services = [sv.id for sv in counter.venue.services]
        s.press("ok", long=True)
    charged = pay("Payment code: classic massage", "classic-60", "charged")
    pay("Payment code: hot stone massage", "hotstone-60", "not_eligible")

    s.drain()
    s.press("ok", long=True)  # cancel-last: staff only, the PIN first
    from kiosk.views import CancelConfirm, PinPrompt

    s.wait_view(PinPrompt)
    for digit in DEMO_PIN:  # each digit: up to its value, then OK; long OK submits
        for _ in range(int(digit)):
            s.press("up")
        s.press("ok")
    s.press("ok", long=True)
    confirm = s.wait_view(CancelConfirm)
    s.press("ok")
    outcome = s.wait_outcome()
    s.report(
        f"Same-day cancel of {confirm.tx}",
        outcome.word,
        "cancelled",
        "charge refunded" if confirm.tx == charged.tx else "",
    )
    _day_report_step(s)


def _day_report_step(s: _Session) -> None:
    """Closing time: the staff's day report (a long press on down)."""
    from kiosk.views import DayReport

    s.drain()
    s.press("down", long=True)
    view = s.wait_view(DayReport)
    f = view.figures
    detail = (
        f"{f.receipts.count} receipts, {f.charges.count} charge(s), {f.cancels.count} cancel(s):"
        f" total {f.total_cents / 100:.2f} EUR"
    )
    s.report("Closing time: the day report (long press down)", "day_report", "day_report", detail)
    s.press("ok")


def _amount_step(s: _Session, backend: Any, counter: Any) -> None:
    """A receipt whose amount pays for no service on the price list: still checked, amber."""
    from refbackend import DEMO_VENUE

    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not counter.venue.services:  # cached by the sync worker once it reaches the backend
        if time.monotonic() > deadline:
            raise queue.Empty
        counter.sync.wake()
        time.sleep(0.2)
    _, token = backend.mint_receipt(DEMO_VENUE, 6000)
    s.drain()
    s.scan(token)
    outcome = s.wait_outcome()
    match = outcome.amount_match
    word, detail = str(outcome.word), "no price list"
    if match is not None:
        nearest = " + ".join(sv.name for sv in match.services)
        detail = f"nearest {nearest}, {match.difference_cents / 100:+.2f} EUR"
        if outcome.word == Word.CHECKED and not match.matched:
            word = "check_amount"
    s.report("Receipt 60,00 EUR: no service costs that", word, "check_amount", detail)
