"""Staff screens: PIN entry, cancel refusals, still charging, technician alarm lines."""

from __future__ import annotations

import pytest

from kiosk import views
from kiosk.screens import i18n
from kiosk.screens.pages import compose


def texts(view: views.View, lang: str) -> list[str]:
    return [" ".join(t.split()) for t in compose(view, lang).texts()]


def joined(view: views.View, lang: str) -> str:
    return " ".join(texts(view, lang))


def test_pin_prompt_masks_confirmed_digits_and_lights_the_one_being_edited() -> None:
    frame = compose(views.PinPrompt(entered=2, digit=7), "fi")
    row = [ln for ln in frame.lines if ln.size == 24]
    assert [ln.text for ln in row] == ["•", "•", "7", "_"]
    assert [ln.ink for ln in row] == [1, 1, 0, 1]  # dark digit on a lit cell
    (cell,) = [b for b in frame.bars if b.y > 0]
    assert cell.x <= row[2].x < cell.x + cell.w
    assert "3. numero" in frame.texts() and "Pitkä OK: poista" in frame.texts()
    assert "7" not in texts(views.PinPrompt(entered=3, digit=0), "fi")


@pytest.mark.parametrize(
    ("entered", "hint"),
    [(0, "Hold OK: back"), (3, "Hold OK: erase"), (4, "Hold OK: done"), (7, "Hold OK: done")],
)
def test_pin_prompt_says_what_a_long_press_does(entered: int, hint: str) -> None:
    frame = compose(views.PinPrompt(entered=entered, digit=1), "en")
    assert hint in frame.texts()
    assert f"Digit {entered + 1}" in frame.texts()
    cells = [ln for ln in frame.lines if ln.size == 24]
    assert len(cells) == max(entered + 1, 4)
    assert [c.text for c in cells].count("•") == entered


def test_wrong_pin_locked_and_unavailable_texts() -> None:
    assert texts(views.PinWrong(2), "en") == ["WRONG PIN", "2 tries left", "Press a button"]
    locked = joined(views.PinLocked(4 * 60 + 5), "en")
    assert "LOCKED" in locked and "4 min 05 s" in locked
    assert "59 s" in joined(views.PinLocked(59), "sv")
    assert "Peruminen ei ole käytössä tässä laitteessa" in joined(
        views.CancelUnavailable("off"), "fi"
    )
    assert "PIN set up by the technician" in joined(views.CancelUnavailable("no_pin"), "en")


def test_a_wait_never_breaks_across_lines() -> None:
    assert i18n.format_duration(245, "fi") == "4\u00a0min\u00a005\u00a0s"
    assert i18n.format_duration(-3, "en") == "0\u00a0s"
    frame = compose(views.PinLocked(245), "fi")
    assert any("4 min 05 s" in t.replace("\u00a0", " ") for t in frame.texts())


def test_still_charging_asks_not_to_scan_again() -> None:
    assert texts(views.StillCharging(6500), "en") == [
        "Still charging…",
        "€65.00",
        "Do not scan again",
    ]
    assert texts(views.StillCharging(), "fi") == ["Veloitus kesken…", "Älä skannaa uudelleen"]
    assert "hourglass" in [i.name for i in compose(views.StillCharging(), "sv").icons]


def tech(**kw: object) -> views.TechInfo:
    return views.TechInfo("counter-1", "10.0.0.2", "1.2.3", 4, online=True, venue="Helmi", **kw)  # type: ignore[arg-type]


def test_technician_screen_puts_alarm_lines_first_and_keeps_the_address() -> None:
    both = compose(tech(quarantined=2, conflicts_24h=3, offline_off=True), "en")
    lines = [" ".join(t.split()) for t in both.texts()]
    assert lines[:2] == ["online", "counter-1"]  # the header
    assert lines[2] == "! Quarantined 2"
    assert f"{lines[3]} {lines[4]}" == "! Offline off: 3 conflicts in 24 h"
    assert lines[5:] == ["IP 10.0.0.2"]  # the other lines give way to the alarms
    assert all(ln.bold for ln in both.lines[2:5])
    assert not any(ln.cut for ln in both.lines)
    one = joined(tech(quarantined=1), "fi")
    assert "! Karanteenissa 1" in one and "IP 10.0.0.2" in one


def test_technician_screen_without_alarms_is_unchanged() -> None:
    plain = texts(tech(conflicts_24h=2), "fi")  # conflicts below the limit: no alarm
    assert plain == [
        "online",
        "counter-1",
        "IP 10.0.0.2",
        "Versio 1.2.3",
        "Lähettämättä 4",
        "Helmi",
    ]
