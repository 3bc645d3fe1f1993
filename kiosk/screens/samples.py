"""A named sample of every screen and variant, for `kiosk screens`, tests and docs.

Deterministic: the same *now* gives the same views (default 14 May 2025, 14.05
Helsinki time). Names are file-name safe and unique.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kiosk import views
from kiosk.amounts import match_amount
from kiosk.day_report import Count, DayFigures
from kiosk.screens.results import DETAIL_REASONS
from kiosk.venue import Service
from kiosk.views import Outcome, Result
from kiosk.vocabulary import RequestKind, Word

DEFAULT_NOW = datetime(2025, 5, 14, 14, 5, tzinfo=ZoneInfo("Europe/Helsinki"))
VENUE = "Hierontastudio Helmi"
OTHER_VENUE = "Kallion Hierontakeskus"

SERVICES = (
    Service("svc_1", "Klassinen hieronta 60 min", 6500),
    Service("svc_2", "Urheiluhieronta 45 min", 5500),
    Service("svc_3", "Kuumakivihieronta 60 min", 7900, benefit="wellbeing", eligible=False),
    Service("svc_4", "Jalkahieronta 30 min", 3500),
    Service("svc_5", "Intialainen päähieronta", 4000),
)


def samples(now: datetime | None = None) -> list[tuple[str, views.View]]:
    """Every screen as (name, view); *now* is the clock the samples are set at."""
    now = now or DEFAULT_NOW
    paid = now - timedelta(minutes=3)
    earlier = now - timedelta(hours=2, minutes=20)

    def result(word: str, kind: str = "receipt", **kw: Any) -> views.View:
        return Result(Outcome(Word(word), RequestKind(kind), tx="tx_sample", **kw))

    receipt: dict[str, Any] = {"amount_cents": 6500, "venue_name": VENUE, "at": paid}

    def priced(word: str, cents: int) -> views.View:
        match = match_amount(cents, SERVICES)
        return result(word, amount_cents=cents, venue_name=VENUE, at=paid, amount_match=match)

    out: list[tuple[str, views.View]] = [
        ("ready", views.Ready(now=now)),
        ("ready_offline", views.Ready(now=now, offline=True, clock_warning=True, pending=3)),
        ("ready_pending", views.Ready(now=now, pending=128, idle_seconds=150.0)),
        ("ready_shifted", views.Ready(now=now, offline=True, idle_seconds=6 * 60.0)),
        ("checking_receipt", views.Checking(RequestKind.RECEIPT)),
        ("checking_charge", views.Checking(RequestKind.CHARGE)),
        ("checking_cancel", views.Checking(RequestKind.CANCEL)),
        ("still_charging", views.StillCharging(amount_cents=6500)),
        ("checked", result("checked", **receipt)),
        ("checked_large", result("checked", amount_cents=123450, venue_name=VENUE, at=paid)),
        ("checked_offline", result("checked_offline", **receipt)),
        ("amount_matched", priced("checked", 6500)),
        ("amount_matched_offline", priced("checked_offline", 5500)),
        ("amount_matched_two", priced("checked", 6500 + 3500)),
        ("amount_matched_twice", priced("checked", 2 * 3500)),
        ("amount_mismatch", priced("checked", 6000)),
        ("amount_mismatch_offline", priced("checked_offline", 9900)),
        (
            "charged",
            result(
                "charged",
                "charge",
                amount_cents=6500,
                at=now,
                service_name="Klassinen hieronta 60 min",
            ),
        ),
        ("cancelled_done", result("cancelled", "cancel", amount_cents=6500, at=now)),
        ("already_checked", result("already_checked", checked_at=earlier, checked_by="counter-1")),
        ("cancelled_receipt", result("cancelled")),
        ("cancelled_receipt_known", result("cancelled", reason="local", told_at=earlier)),
        (
            "already_checked_known",
            result("already_checked", checked_at=earlier, checked_by="counter-2", told_at=now),
        ),
        ("invalid_known", result("invalid", reason="mismatch", told_at=earlier)),
        ("wrong_venue", result("wrong_venue", venue_name=OTHER_VENUE)),
        ("invalid_not_smartum", result("invalid", reason="not_smartum")),
        ("invalid_signature", result("invalid", reason="bad_signature")),
        ("invalid_expired", result("invalid", reason="expired")),
        ("invalid_unknown", result("invalid", reason="something_new")),
        ("cancel_not_same_day", result("invalid", "cancel", reason="not_same_day")),
        ("not_eligible", result("not_eligible", "charge", service_name="Kuumakivihieronta 60 min")),
        ("insufficient_funds", result("insufficient_funds", "charge", balance_cents=1250)),
        ("paycode_used", result("paycode_used", "charge")),
        ("paycode_expired", result("paycode_expired", "charge")),
        ("needs_network", result("needs_network", "charge")),
    ]
    for reason in sorted(DETAIL_REASONS):  # every reason shown as an extra line
        out.append((f"offline_{reason}", result("needs_network", reason=reason)))
    out += [
        ("conflict", result("conflict", amount_cents=6500)),
        ("service_menu", views.ServiceMenu(SERVICES, selected=0)),
        ("service_menu_scrolled", views.ServiceMenu(SERVICES, selected=3)),
        ("service_menu_empty", views.ServiceMenu(())),
        ("confirm_charge", views.ConfirmCharge(SERVICES[0])),
        ("cancel_confirm", views.CancelConfirm("tx_sample", 6500, at=paid)),
        ("pin_first", views.PinPrompt(entered=0, digit=0)),
        ("pin_third", views.PinPrompt(entered=2, digit=7)),
        ("pin_done", views.PinPrompt(entered=4, digit=0)),
        ("pin_last", views.PinPrompt(entered=7, digit=9)),
        ("pin_wrong", views.PinWrong(tries_left=2)),
        ("pin_locked", views.PinLocked(seconds_left=4 * 60 + 5)),
        ("cancel_off", views.CancelUnavailable("off")),
        ("cancel_no_pin", views.CancelUnavailable("no_pin")),
        ("alarm_journal", views.Alarm("journal", detail="journal.db: disk I/O error")),
        ("alarm_disk_full", views.Alarm("disk_full")),
        ("alarm_scanner", views.Alarm("scanner", detail="/dev/ttyACM0")),
        (
            "tech_info",
            views.TechInfo("counter-1", "192.168.10.23", "0.1.0", 3, online=False, venue=VENUE),
        ),
        (
            "tech_alarms",
            views.TechInfo(
                "counter-1",
                "192.168.10.23",
                "0.1.0",
                14,
                online=True,
                venue=VENUE,
                quarantined=2,
                conflicts_24h=3,
                offline_off=True,
            ),
        ),
        (
            "tech_quarantined",
            views.TechInfo("counter-1", "192.168.10.23", "0.1.0", 5, online=True, quarantined=1),
        ),
        (
            "tech_salvaged",
            views.TechInfo(
                "counter-1",
                "192.168.10.23",
                "0.1.0",
                57,
                online=True,
                journal_salvaged=172,
                journal_lost=3,
            ),
        ),
        ("alarm_journal_salvaged", views.Alarm("journal", salvage=views.Salvage(172, 3))),
        ("day_report", views.DayReport(now, DAY)),
        ("day_report_checks", views.DayReport(now, DAY, page=1)),
        ("day_report_services", views.DayReport(now, DAY, page=2)),
        ("day_report_unmatched", views.DayReport(now, DAY, page=3)),
        ("day_report_empty", views.DayReport(now, DayFigures())),
        ("out_of_service", views.OutOfService()),
    ]
    return out


DAY = DayFigures(
    receipts=Count(23, 142_500),
    offline=Count(2, 12_000),
    charges=Count(4, 26_000),
    cancels=Count(1, 6_500),
    services=(
        ("Klassinen hieronta 60 min", Count(14, 91_000)),
        ("Klassinen hieronta 60 min + Jalkahieronta 30 min", Count(1, 10_000)),
        ("Urheiluhieronta 45 min", Count(9, 49_500)),
    ),
    unmatched=Count(2, 11_500),
    waiting_upload=Count(1, 5_500),
    conflicts=Count(1, 6_500),
    late_answers=Count(1, 6_500),
)
"""A busy day for the day report samples."""
