"""Payment codes and cancels end to end: charged exactly once, refused with the reason."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk import __version__
from kiosk.journal import Journal
from kiosk.views import CancelConfirm, ConfirmCharge, Result, ServiceMenu, TechInfo
from refbackend import DEMO_VENUE, ReferenceBackend

Sim = Any
SERVICES = ("classic-60", "sports-45", "hotstone-60")  # the demo venue's menu, in order


class BackendClock:
    """The reference backend's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def backend_clock() -> BackendClock:
    return BackendClock()


@pytest.fixture
def refbackend(tmp_path: Path, backend_clock: BackendClock) -> Iterator[ReferenceBackend]:
    """The shared fixture's backend, with a clock the test can move (paycode expiry)."""
    with ReferenceBackend(
        tmp_path / "backend.db", host="127.0.0.1", port=0, dev=True, clock=backend_clock
    ) as backend:
        yield backend


# --- helpers ---------------------------------------------------------------------------------


def paycode_row(backend: ReferenceBackend, jti: str) -> sqlite3.Row:
    """The backend's own record of a paycode (balance and who used it)."""
    conn = sqlite3.connect(f"file:{backend.db}?mode=ro", uri=True, timeout=5.0)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM paycodes WHERE jti = ?", (jti,)).fetchone()
    finally:
        conn.close()
    assert row is not None
    return row


def backend_history(backend: ReferenceBackend, client: tuple[str, str]) -> dict[str, dict]:
    token = requests.post(
        f"{backend.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
        timeout=5,
    ).json()["access_token"]
    resp = requests.get(
        f"{backend.url}/v1/venues/{DEMO_VENUE}/transactions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return {i["tx"]: i for i in resp.json()["items"]}


def journal_requests(sim: Sim, kind: str) -> list[sqlite3.Row]:
    with Journal.open(sim.cfg.journal.path) as journal:
        return list(journal.conn.execute("SELECT * FROM requests WHERE kind = ?", (kind,)))


def journal_outcomes(sim: Sim) -> list[tuple[str, str, str | None]]:
    with Journal.open(sim.cfg.journal.path) as journal:
        return [(o.kind, o.outcome, o.tx) for o in reversed(journal.outcomes())]


def choose(sim: Sim, code: str, service: str) -> ServiceMenu:
    """Scan *code* and move the menu to *service* (no OK yet)."""
    sim.submit_scan(code)
    menu = sim.wait_view(ServiceMenu)
    ids = [s.id for s in menu.services]
    assert tuple(ids) == SERVICES
    for _ in range(ids.index(service)):
        sim.press("down")
    return menu


def charge_with_buttons(sim: Sim, code: str, service: str = "classic-60") -> Any:
    """ServiceMenu -> OK -> ConfirmCharge -> OK; returns the outcome."""
    choose(sim, code, service)
    sim.press("ok")
    confirm = sim.wait_view(ConfirmCharge)
    assert confirm.service.id == service
    sim.press("ok")
    return sim.outcome()


def load_services(sim: Sim) -> None:
    """Let the kiosk learn the venue's menu (then back out without charging)."""
    sim.submit_scan(sim.backend.mint_paycode(100)["code"])
    sim.wait_view(ServiceMenu)
    sim.press("ok", long=True)


# --- charges ---------------------------------------------------------------------------------


def test_paycode_jws_charged_for_classic_via_buttons(sim: Sim, demo_client: Any) -> None:
    code = sim.backend.mint_paycode(20000)
    outcome = charge_with_buttons(sim, code["token"])
    assert (outcome.word, outcome.kind, outcome.amount_cents) == ("charged", "charge", 6500)
    assert outcome.service_name and outcome.tx and outcome.tx.startswith("tx_")
    row = paycode_row(sim.backend, code["jti"])
    assert (row["balance_cents"], row["used_by"]) == (13500, outcome.tx)
    item = backend_history(sim.backend, demo_client)[outcome.tx]
    assert (item["kind"], item["status"], item["amount_cents"], item["device"]) == (
        "charge",
        "charged",
        6500,
        "counter-1",
    )
    (req,) = journal_requests(sim, "charge")
    assert (req["state"], req["status"], req["ref"]) == ("done", "charged", code["jti"])
    assert journal_outcomes(sim) == [("charge", "charged", outcome.tx)]


def test_bare_twelve_digit_code_is_charged(sim: Sim) -> None:
    code = sim.backend.mint_paycode(10000)
    outcome = charge_with_buttons(sim, code["code"], "sports-45")
    assert (outcome.word, outcome.amount_cents) == ("charged", 5500)
    row = paycode_row(sim.backend, code["jti"])
    assert (row["balance_cents"], row["used_by"]) == (4500, outcome.tx)
    (req,) = journal_requests(sim, "charge")
    assert req["ref"] == code["code"] and req["state"] == "done"


def test_hot_stone_refused_as_not_eligible_without_a_charge(sim: Sim) -> None:
    code = sim.backend.mint_paycode(20000)
    choose(sim, code["token"], "hotstone-60")
    sim.press("ok")  # no confirmation step for a service the benefit does not pay
    outcome = sim.outcome()
    assert (outcome.word, outcome.reason) == ("not_eligible", "local")
    assert outcome.service_name and outcome.amount_cents == 7500
    row = paycode_row(sim.backend, code["jti"])
    assert (row["balance_cents"], row["used_by"]) == (20000, None)
    assert journal_requests(sim, "charge") == []
    assert journal_outcomes(sim) == [("charge", "not_eligible", None)]


def test_insufficient_funds_shows_the_balance(sim: Sim) -> None:
    code = sim.backend.mint_paycode(1000)
    outcome = charge_with_buttons(sim, code["token"])
    assert (outcome.word, outcome.balance_cents) == ("insufficient_funds", 1000)
    shown = sim.counter.screen.last_view
    assert isinstance(shown, Result) and shown.outcome.balance_cents == 1000
    assert paycode_row(sim.backend, code["jti"])["balance_cents"] == 1000
    (req,) = journal_requests(sim, "charge")
    assert (req["state"], req["status"]) == ("done", "insufficient_funds")


def test_second_charge_with_the_same_code_is_paycode_used(sim: Sim, demo_client: Any) -> None:
    code = sim.backend.mint_paycode(20000)
    first = charge_with_buttons(sim, code["token"])
    assert first.word == "charged"
    sim.advance(0.35)  # past the repeat window: a real second scan
    second = charge_with_buttons(sim, code["token"])
    assert (second.word, second.tx) == ("paycode_used", None)
    assert paycode_row(sim.backend, code["jti"])["balance_cents"] == 13500
    charges = [i for i in backend_history(sim.backend, demo_client).values()]
    assert [i["tx"] for i in charges] == [first.tx]
    assert [o[1] for o in journal_outcomes(sim)] == ["charged", "paycode_used"]


def test_expired_code_is_judged_by_the_backend(sim: Sim, backend_clock: BackendClock) -> None:
    code = sim.backend.mint_paycode(20000, ttl_s=60)
    backend_clock.offset = 600.0  # the backend's time is past exp; the kiosk's is not
    outcome = charge_with_buttons(sim, code["code"])
    assert outcome.word == "paycode_expired"
    assert paycode_row(sim.backend, code["jti"])["used_by"] is None
    (req,) = journal_requests(sim, "charge")
    assert (req["state"], req["status"]) == ("done", "paycode_expired")


def test_expired_jws_refused_locally_with_a_synced_clock(
    sim: Sim, backend_clock: BackendClock
) -> None:
    backend_clock.offset = -3600.0  # issued an hour ago: exp long past on the kiosk's clock
    code = sim.backend.mint_paycode(20000, ttl_s=300)
    backend_clock.offset = 0.0
    outcome = sim.scan(code["token"])
    assert (outcome.word, outcome.kind, outcome.reason) == ("paycode_expired", "charge", "expired")
    assert journal_requests(sim, "charge") == []
    assert journal_outcomes(sim) == [("charge", "paycode_expired", None)]


def test_serial_only_setup_charges_the_default_service(make_sim: Any) -> None:
    sim = make_sim(buttons=False, device={"default_service": "sports-45"})
    code = sim.backend.mint_paycode(20000)
    outcome = sim.scan(code["token"])
    assert (outcome.word, outcome.amount_cents) == ("charged", 5500)
    (req,) = journal_requests(sim, "charge")
    assert '"service":"sports-45"' in req["body"]
    assert paycode_row(sim.backend, code["jti"])["balance_cents"] == 14500


def test_serial_only_without_default_service_refuses_clearly(make_sim: Any) -> None:
    sim = make_sim(buttons=False, device={"default_service": ""})
    code = sim.backend.mint_paycode(20000)
    outcome = sim.scan(code["code"])
    assert (outcome.word, outcome.reason) == ("invalid", "no_default_service")
    assert journal_requests(sim, "charge") == []
    assert paycode_row(sim.backend, code["jti"])["used_by"] is None


def test_charge_while_backend_down_needs_network_and_charges_nothing(
    sim: Sim, demo_client: Any
) -> None:
    load_services(sim)
    code = sim.backend.mint_paycode(20000)
    sim.backend.pause()
    outcome = charge_with_buttons(sim, code["token"])
    assert (outcome.word, outcome.reason) == ("needs_network", "offline")
    (req,) = [r for r in journal_requests(sim, "charge") if r["ref"] == code["jti"]]
    assert (req["state"], req["maybe_delivered"]) == ("void", 0)
    sim.backend.resume()
    sim.wait_synced()
    assert paycode_row(sim.backend, code["jti"])["used_by"] is None
    assert not [i for i in backend_history(sim.backend, demo_client).values()]


# --- cancels and the technician screen -------------------------------------------------------


def test_long_press_cancels_todays_charge_restores_the_balance_and_the_code_stays_used(
    make_sim: Any, demo_client: Any
) -> None:
    sim = make_sim(counter={"cancel": "open"})
    code = sim.backend.mint_paycode(20000)
    charged = charge_with_buttons(sim, code["token"])
    assert charged.word == "charged"
    sim.press("ok", long=True)
    confirm = sim.wait_view(CancelConfirm)
    assert (confirm.tx, confirm.amount_cents) == (charged.tx, 6500)
    sim.press("ok")
    outcome = sim.outcome()
    assert (outcome.word, outcome.kind, outcome.tx) == ("cancelled", "cancel", charged.tx)
    row = paycode_row(sim.backend, code["jti"])
    assert (row["balance_cents"], row["used_by"]) == (20000, charged.tx)
    assert backend_history(sim.backend, demo_client)[charged.tx]["status"] == "cancelled"
    (req,) = journal_requests(sim, "cancel")
    assert (req["tx"], req["state"], req["status"]) == (charged.tx, "done", "cancelled")
    assert journal_outcomes(sim)[-1] == ("cancel", "cancelled", charged.tx)


def test_long_press_with_a_different_button_backs_out_of_the_cancel(make_sim: Any) -> None:
    sim = make_sim(counter={"cancel": "open"})
    code = sim.backend.mint_paycode(20000)
    charged = charge_with_buttons(sim, code["token"])
    sim.press("ok", long=True)
    sim.wait_view(CancelConfirm)
    sim.press("down")
    time.sleep(0.2)
    sim.press("up", long=True)  # the technician screen, proof that the engine moved on
    sim.wait_view(TechInfo)
    assert journal_requests(sim, "cancel") == []
    assert paycode_row(sim.backend, code["jti"])["used_by"] == charged.tx


def test_cancel_last_with_nothing_today_is_refused(make_sim: Any) -> None:
    sim = make_sim(counter={"cancel": "open"})
    sim.press("ok", long=True)
    outcome = sim.outcome()
    assert (outcome.word, outcome.kind, outcome.reason) == (
        "invalid",
        "cancel",
        "nothing_to_cancel",
    )
    assert journal_requests(sim, "cancel") == []


def test_long_press_up_shows_the_technician_screen(sim: Sim) -> None:
    sim.press("up", long=True)
    info = sim.wait_view(TechInfo)
    assert (info.device_id, info.version) == ("counter-1", __version__)
    assert info.pending == 0 and info.ip_address == "127.0.0.1"
