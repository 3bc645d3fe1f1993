"""A checked receipt's amount against the venue's price list: screen, signal and journal.

The demo venue's price list (reference backend): Klassinen hieronta 60 min 65,00 €
and Urheiluhieronta 45 min 55,00 € are eligible; Kuumakivihieronta 60 min 75,00 € is not.
"""

from __future__ import annotations

import time
from typing import Any

from kiosk.journal import Journal, OutcomeRow
from kiosk.views import ConfirmCharge, Result, ServiceMenu
from refbackend import DEMO_VENUE

CLASSIC, SPORTS = "Klassinen hieronta 60 min", "Urheiluhieronta 45 min"
RED, GREEN, BLUE = 22, 23, 24


def amounts_sim(make_sim: Any, **sections: dict[str, Any]) -> Any:
    """A counter with an RGB LED, once the sync worker has cached the price list."""
    sections.setdefault("signals", {}).update({"rgb_pins": [RED, GREEN, BLUE], "led_pin": -1})
    sim = make_sim(**sections)
    deadline = time.monotonic() + 10
    while not sim.counter.venue.services:
        assert time.monotonic() < deadline, "the price list was never cached"
        time.sleep(0.05)
    return sim


def red_lit(sim: Any) -> bool:
    """Whether the LED's red channel went on (amber) for the last signal played."""
    assert sim.indicators.wait(5.0)
    return any(float(s.state) > 0 for s in sim.factory.pin(RED).states)


def journal_row(sim: Any, tx: str) -> OutcomeRow:
    with Journal.open(sim.cfg.journal.path) as journal:
        (row,) = [o for o in journal.outcomes() if o.tx == tx]
    return row


def test_amount_of_one_service_shows_it_and_plays_accepted(make_sim: Any) -> None:
    sim = amounts_sim(make_sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    outcome = sim.scan(token)
    assert outcome.word == "checked"
    match = outcome.amount_match
    assert match is not None and match.matched
    assert [s.name for s in match.services] == [CLASSIC]
    view = sim.counter.screen.last_view
    assert isinstance(view, Result) and view.outcome.amount_match == match
    assert not red_lit(sim)  # green: accepted
    row = journal_row(sim, tx)
    assert (row.service, row.amount_check, row.amount_difference_cents) == (CLASSIC, "ok", 0)


def test_amount_of_no_service_is_checked_with_check_the_amount(make_sim: Any) -> None:
    sim = amounts_sim(make_sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 6000)
    outcome = sim.scan(token)
    assert outcome.word == "checked"  # the money was paid: still checked
    match = outcome.amount_match
    assert match is not None and not match.matched
    assert ([s.name for s in match.services], match.difference_cents) == ([CLASSIC], -500)
    assert red_lit(sim)  # amber "check_amount", not the green "accepted"
    row = journal_row(sim, tx)
    assert (row.outcome, row.service, row.amount_check, row.amount_difference_cents) == (
        "checked",
        CLASSIC,
        "mismatch",
        -500,
    )


def test_offline_receipt_is_matched_against_the_cached_price_list(make_sim: Any) -> None:
    sim = amounts_sim(make_sim)
    _, first = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    assert sim.scan(first).word == "checked"  # a recent exchange: offline acceptance allowed
    sim.backend.pause()
    try:
        tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4500)
        outcome = sim.scan(token)
    finally:
        sim.backend.resume()
    assert outcome.word == "checked_offline", outcome.reason
    match = outcome.amount_match
    assert match is not None and not match.matched
    assert ([s.name for s in match.services], match.difference_cents) == ([SPORTS], -1000)
    row = journal_row(sim, tx)
    assert (row.service, row.amount_check, row.amount_difference_cents) == (
        SPORTS,
        "mismatch",
        -1000,
    )
    sim.wait_synced()  # uploading it keeps what it paid for
    row = journal_row(sim, tx)
    assert (row.synced, row.outcome, row.amount_check) == (True, "checked_offline", "mismatch")


def test_two_visits_in_one_receipt_name_the_service_twice(make_sim: Any) -> None:
    sim = amounts_sim(make_sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 5500 + 5500)
    outcome = sim.scan(token)
    match = outcome.amount_match
    assert match is not None and match.matched
    assert [s.name for s in match.services] == [SPORTS, SPORTS]
    assert not red_lit(sim)
    assert journal_row(sim, tx).service == f"{SPORTS} + {SPORTS}"


def test_amount_check_off_leaves_the_receipt_unmatched(make_sim: Any) -> None:
    sim = amounts_sim(make_sim, counter={"amount_check": "off"})
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 6000)
    outcome = sim.scan(token)
    assert (outcome.word, outcome.amount_match) == ("checked", None)
    assert not red_lit(sim)
    row = journal_row(sim, tx)
    assert (row.service, row.amount_check, row.amount_difference_cents) == ("", None, None)


def test_a_charge_journals_its_service(make_sim: Any) -> None:
    sim = amounts_sim(make_sim)
    code = sim.backend.mint_paycode(10000)["code"]
    sim.submit_scan(code)
    sim.wait_view(ServiceMenu)
    sim.press("ok")
    sim.wait_view(ConfirmCharge)
    sim.press("ok")
    outcome = sim.outcome()
    assert (outcome.word, outcome.amount_match) == ("charged", None)
    row = journal_row(sim, outcome.tx or "")
    assert (row.service, row.amount_check) == (CLASSIC, None)
