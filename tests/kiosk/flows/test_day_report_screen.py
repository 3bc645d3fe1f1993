"""The staff's day report on the device: a long press on down, up/down turn its pages."""

from __future__ import annotations

import time
from typing import Any as Sim

from kiosk.day_report import Count
from kiosk.views import DayReport, Ready
from refbackend import DEMO_VENUE


def test_long_press_down_shows_today_and_the_buttons_turn_its_pages(sim: Sim) -> None:
    deadline = time.monotonic() + 10.0
    while not sim.counter.venue.services:  # the price list, fetched by the sync worker
        assert time.monotonic() < deadline, "the venue's services were never fetched"
        time.sleep(0.02)
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 6500)
    assert sim.scan(token).word == "checked"
    _, other = sim.backend.mint_receipt(DEMO_VENUE, 4000)
    assert sim.scan(other).word == "checked"
    sim.press("down", long=True)
    report = sim.wait_view(DayReport)
    assert report.page == 0 and report.pages == 3  # money, checks, one service + unmatched
    assert report.figures.receipts == Count(2, 10500)
    assert report.figures.total_cents == 10500
    assert report.figures.services == (("Klassinen hieronta 60 min", Count(1, 6500)),)
    assert report.figures.unmatched == Count(1, 4000)  # 40,00 matches no service
    sim.press("down")
    assert sim.wait_view(DayReport).page == 1
    sim.press("up")
    sim.press("up")
    assert sim.wait_view(DayReport).page == 0
    assert sim.wait_view(DayReport).page == 2  # round, from the first page to the last
    sim.press("ok")  # leaves the report
    sim.wait_view(Ready)
