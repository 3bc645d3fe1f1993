"""Bounded decision time: the first scan after the backend starts failing gets its result
within ``backend.scan_budget``; a charge waits longer, with the still-charging screen.

Real counters against the reference backend on 127.0.0.1 with its fault injection:
5xx answers to everything, or connections accepted and answered only much later.
The read timeout is long (6 s) and the scan budget short (1 s), so a decision that
still waited for the read timeout or the old retry window would be plainly seen.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kiosk.views import Result, StillCharging
from refbackend import DEMO_VENUE

Sim = Any
BUDGET = {"backend": {"connect_timeout": 0.5, "read_timeout": 6.0, "scan_budget": 1.0}}
# Before the scan budget, a failing backend held a receipt for connect + read + 1 s.
WELL_UNDER_THE_READ_TIMEOUT_S = 4.0


def online(sim: Sim) -> None:
    """One online check (keys, a recent sync) and the venue fetched by the sync worker."""
    assert sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    sim.wait_venue_fetched()


def timed_scan(sim: Sim, token: str) -> tuple[Any, float]:
    started = time.monotonic()
    outcome = sim.scan(token)
    return outcome, time.monotonic() - started


def checks_at_backend(sim: Sim, client_id: str, tx: str) -> list[int]:
    """HTTP statuses of the stored answers to receipt checks of *tx* by this client."""
    rows = sim.backend_rows(
        "SELECT code, body FROM idempotency WHERE client = ? AND code IS NOT NULL", (client_id,)
    )
    return [int(r["code"]) for r in rows if json.loads(bytes(r["body"])).get("tx") == tx]


def uploaded_once(sim: Sim, client_id: str, tx: str) -> None:
    sim.wait_synced()
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert (req["state"], req["status"]) == ("done", "checked")
    assert checks_at_backend(sim, client_id, tx) == [200]  # one check, no second
    (row,) = sim.backend_rows("SELECT state FROM transactions WHERE tx = ?", (tx,))
    assert row["state"] == "checked"


def test_first_scan_after_server_errors_is_accepted_offline_within_the_budget(
    make_sim: Any, demo_client: tuple[str, str]
) -> None:
    sim = make_sim(**BUDGET)
    online(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2500)
    sim.backend.faults.error_500 = 10_000  # every /v1 request from now on
    outcome, took = timed_scan(sim, token)
    assert (outcome.word, outcome.tx) == ("checked_offline", tx)
    assert took < WELL_UNDER_THE_READ_TIMEOUT_S
    # A 5xx may come after processing: the request stays pending, never rewritten offline.
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert (req["state"], req["maybe_delivered"], req["offline"]) == ("pending", 1, 0)
    sim.backend.faults.error_500 = 0
    uploaded_once(sim, demo_client[0], tx)


def test_first_scan_after_the_backend_falls_silent_is_accepted_offline_within_the_budget(
    make_sim: Any, demo_client: tuple[str, str]
) -> None:
    sim = make_sim(**BUDGET)
    online(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2600)
    sim.backend.faults.delaying.clear()
    sim.backend.faults.delay_s = 4.5  # accepted, answered long after the scan budget
    outcome, took = timed_scan(sim, token)
    assert sim.backend.faults.delaying.is_set()  # the check did reach the backend
    assert (outcome.word, outcome.tx) == ("checked_offline", tx)
    assert took < WELL_UNDER_THE_READ_TIMEOUT_S
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE tx = ?", (tx,))
    assert (req["state"], req["maybe_delivered"]) == ("pending", 1)
    sim.backend.faults.delay_s = 0.0
    uploaded_once(sim, demo_client[0], tx)


def test_slow_charge_shows_still_charging_then_completes(
    make_sim: Any, demo_client: tuple[str, str]
) -> None:
    sim = make_sim(buttons=False, **BUDGET)
    online(sim)
    code = sim.backend.mint_paycode(20000)
    sim.backend.faults.delay_s = 2.5  # longer than the scan budget, within the read timeout
    sim.submit_scan(code["token"])
    still = sim.wait_view(StillCharging)
    assert still.amount_cents == 6500
    shown = sim.wait_view(Result)
    assert (shown.outcome.word, shown.outcome.amount_cents) == ("charged", 6500)
    assert sim.outcome() == shown.outcome
    sim.backend.faults.delay_s = 0.0
    (charge,) = sim.backend_rows("SELECT * FROM transactions WHERE paycode = ?", (code["jti"],))
    assert shown.outcome.tx == charge["tx"]
    (req,) = sim.journal_rows("SELECT * FROM requests WHERE kind = 'charge'")
    assert (req["state"], req["status"]) == ("done", "charged")


def test_quick_charge_never_shows_still_charging(make_sim: Any) -> None:
    sim = make_sim(buttons=False, **BUDGET)
    online(sim)
    code = sim.backend.mint_paycode(20000)
    outcome = sim.scan(code["token"])
    assert outcome.word == "charged"
    time.sleep(1.2)  # past the scan budget: a forgotten timer would draw now
    seen = []
    while not sim.views.empty():
        seen.append(sim.views.get_nowait())
    assert not any(isinstance(v, StillCharging) for v in seen)
    assert isinstance(sim.counter.screen.last_view, Result)
