"""The engine's display and indicators: which signal goes with an outcome, and hardware faults."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kiosk.errors import HardwareError
from kiosk.flows.presenter import Presenter, outcome_signal
from kiosk.logs import setup_logging
from kiosk.venue import Service
from kiosk.views import Alarm, AmountMatch, Checking, Outcome, Result, View
from kiosk.vocabulary import RequestKind, Word

CLASSIC = Service("classic-60", "Klassinen hieronta 60 min", 6500)


class Screen:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.shown: list[View] = []
        self.dims: list[bool] = []

    def show(self, view: View) -> None:
        if self.fail:
            raise HardwareError("display stopped answering")
        self.shown.append(view)

    def dim(self, dimmed: bool) -> None:
        self.dims.append(dimmed)


class Signals:
    def __init__(self) -> None:
        self.played: list[str] = []

    def signal(self, kind: str) -> None:
        self.played.append(kind)


@pytest.mark.parametrize(
    ("outcome", "signal"),
    [
        (Outcome(Word.CHECKED, RequestKind.RECEIPT), "accepted"),
        (Outcome(Word.CHECKED_OFFLINE, RequestKind.RECEIPT), "accepted_offline"),
        (Outcome(Word.INVALID, RequestKind.RECEIPT), "refused"),
        (
            Outcome(Word.CHECKED, RequestKind.RECEIPT, amount_match=AmountMatch((CLASSIC,), -500)),
            "check_amount",
        ),
        (
            Outcome(Word.CHECKED, RequestKind.RECEIPT, amount_match=AmountMatch((CLASSIC,))),
            "accepted",
        ),
    ],
)
def test_outcome_signal(outcome: Outcome, signal: str) -> None:
    assert outcome_signal(outcome) == signal


def test_result_shows_sounds_and_tells_the_listener() -> None:
    screen, signals, heard = Screen(), Signals(), []
    out = Presenter(screen, signals, heard.append)
    outcome = Outcome(Word.CHECKED, RequestKind.RECEIPT)
    out.result(outcome)
    assert screen.shown == [Result(outcome)]
    assert signals.played == ["accepted"]
    assert heard == [outcome]


def test_unless_shown_skips_the_view_already_on_screen() -> None:
    screen = Screen()
    out = Presenter(screen, Signals())
    out.show(Checking(RequestKind.RECEIPT))
    out.show(Checking(RequestKind.RECEIPT), unless_shown=True)
    out.show(Checking(RequestKind.CHARGE), unless_shown=True)
    assert screen.shown == [Checking(RequestKind.RECEIPT), Checking(RequestKind.CHARGE)]


def test_dim_reaches_the_display_only_on_a_change() -> None:
    screen = Screen()
    out = Presenter(screen, Signals())
    for dimmed in (False, True, True, False, False):
        out.dim(dimmed)
    assert screen.dims == [True, False]


def test_a_failing_display_is_logged_and_the_signal_still_plays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signals = Signals()
    out = Presenter(Screen(fail=True), signals)
    with caplog.at_level(logging.WARNING, logger="kiosk.engine"):
        out.alarm(Alarm("journal", "x" * 100))
    assert signals.played == ["error"]
    assert "display: display stopped answering" in caplog.text


def test_each_outcome_is_one_journal_entry_with_the_kiosk_fields() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    setup_logging(
        "info",
        journald=True,
        journal_send=lambda message, /, **fields: sent.append((message, fields)),
        device="counter-1",
        venue="ven_1",
    )
    try:
        out = Presenter(Screen(), Signals())
        out.result(Outcome(Word.CHECKED, RequestKind.RECEIPT, tx="tx_51", amount_cents=6500))
        out.result(Outcome(Word.INVALID, RequestKind.RECEIPT, reason="bad_signature"))
    finally:
        setup_logging("info", journald=False)
    entries = [(m, f) for m, f in sent if m.startswith("outcome ")]
    assert [m for m, _ in entries] == ["outcome checked", "outcome invalid"]
    checked, invalid = (f for _, f in entries)
    assert checked["KIOSK_TX"] == "tx_51" and checked["KIOSK_OUTCOME"] == "checked"
    assert checked["KIOSK_KIND"] == "receipt" and checked["KIOSK_AMOUNT_CENTS"] == 6500
    assert checked["KIOSK_DEVICE"] == "counter-1" and checked["KIOSK_VENUE"] == "ven_1"
    assert "KIOSK_REASON" not in checked
    assert invalid["KIOSK_OUTCOME"] == "invalid" and invalid["KIOSK_REASON"] == "bad_signature"
    assert "KIOSK_TX" not in invalid


def test_each_result_reports_the_arrival_of_the_scan_it_answers() -> None:
    answered: list[float] = []
    out = Presenter(Screen(), Signals(), on_answered=answered.append)
    out.scan_arrived(10.0)
    out.result(Outcome(Word.CHECKED, RequestKind.RECEIPT))
    out.result(Outcome(Word.INVALID, RequestKind.RECEIPT))  # no scan of its own: not timed
    out.scan_arrived(11.0)
    out.scan_arrived(12.5)  # the engine handles scans one at a time: the latest is the one
    out.result(Outcome(Word.CHECKED, RequestKind.RECEIPT))
    out.scan_arrived(None)  # a service menu answers this one
    out.result(Outcome(Word.CHARGED, RequestKind.CHARGE))
    assert answered == [10.0, 12.5]
