"""What the screens say and that it fits: texts, boxes, burn-in shift, terminal view."""

from __future__ import annotations

from datetime import datetime
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageChops, ImageDraw

from kiosk import screens, views
from kiosk.screens import layout, pages
from kiosk.screens.pages import compose
from kiosk.views import Outcome, Result

HKI = ZoneInfo("Europe/Helsinki")
PAID = datetime(2025, 5, 14, 14, 2, tzinfo=HKI)
SAMPLES = screens.samples()
# samples whose data (not a translation) is longer than a line, by design
# service names: the day report shortens them (the CLI summary has them whole)
DATA_MAY_BE_CUT = {
    "service_menu",
    "service_menu_scrolled",
    "amount_matched_two",
    "day_report_services",
    "day_report_unmatched",
}


def texts(view: views.View, lang: str) -> str:
    return " | ".join(compose(view, lang).texts())


def result(word: str, kind: str = "receipt", **kw: object) -> Result:
    return Result(Outcome(word, kind, **kw))  # type: ignore[arg-type]


def inside(box: layout.Box) -> bool:
    return box.x >= 0 and box.y >= 0 and box.x + box.w <= 128 and box.y + box.h <= 64


@pytest.mark.parametrize("lang", screens.LANGUAGES)
@pytest.mark.parametrize(("name", "view"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_every_screen_fits_the_panel_uncut(name: str, view: views.View, lang: str) -> None:
    frame = compose(view, lang)
    assert frame.lines, "a screen without text"
    for box in frame.boxes():
        assert inside(box), f"{box} is outside the 128x64 panel"
    for line in frame.lines:
        assert line.size in layout.SIZES
        assert not line.cut or name in DATA_MAY_BE_CUT, f"cut: {line.text!r}"
    for a, b in combinations(frame.lines, 2):
        ab, bb = a.box, b.box
        overlap = ab.x < bb.x + bb.w and bb.x < ab.x + ab.w and ab.y < bb.y + bb.h
        assert not (overlap and bb.y < ab.y + ab.h), f"{a.text!r} overlaps {b.text!r}"


def test_render_is_pure_and_matches_the_composed_frame() -> None:
    for _, view in SAMPLES:
        first = screens.render(view, "sv")
        again = screens.render(view, "sv")
        assert first.mode == "1" and first.size == (screens.WIDTH, screens.HEIGHT)
        assert first.tobytes() == again.tobytes()
        assert first.tobytes() == layout.paint(compose(view, "sv")).tobytes()


def test_languages_give_different_pictures() -> None:
    view = Result(Outcome("checked", "receipt", amount_cents=6500, venue_name="X", at=PAID))
    fi, sv = screens.render(view, "fi"), screens.render(view, "sv")
    assert ImageChops.difference(fi.convert("L"), sv.convert("L")).getbbox() is not None


def test_default_language_is_finnish() -> None:
    view = views.Checking()
    assert screens.render(view).tobytes() == screens.render(view, "fi").tobytes()


def test_checked_shows_amount_large_with_studio_and_payment_time() -> None:
    view = result("checked", amount_cents=6500, venue_name="Hierontastudio Helmi", at=PAID)
    frame = compose(view, "fi")
    amount = next(ln for ln in frame.lines if ln.text == "65,00 €")
    assert amount.size >= 24 and amount.bold
    assert frame.texts() == ["HYVÄKSYTTY", "65,00 €", "Hierontastudio Helmi", "Maksettu klo 14.02"]
    assert "€65.00" in texts(view, "en") and "Paid 14:02" in texts(view, "en")
    assert "Betald kl. 14.02" in texts(view, "sv")


def test_large_amount_shrinks_to_fit() -> None:
    frame = compose(result("checked", amount_cents=123456789, venue_name="V", at=PAID), "fi")
    amount = next(ln for ln in frame.lines if "€" in ln.text)
    assert amount.text == "1 234 567,89 €" and not amount.cut and inside(amount.box)


def test_offline_acceptance_is_marked_differently() -> None:
    online = compose(result("checked", amount_cents=6500, venue_name="V", at=PAID), "fi")
    offline = compose(result("checked_offline", amount_cents=6500, venue_name="V", at=PAID), "fi")
    assert "offline" in [i.name for i in offline.icons]
    assert "offline" not in [i.name for i in online.icons]
    assert "Tarkistettu offline" in offline.texts()


@pytest.mark.parametrize(
    ("view", "lang", "expected"),
    [
        (
            result("already_checked", checked_at=PAID, checked_by="counter-1"),
            "fi",
            ["HYLÄTTY", "Jo tarkistettu", "klo 14.02, counter-1"],
        ),
        (
            result("already_checked", checked_at=PAID, checked_by="counter-1"),
            "en",
            ["REFUSED", "Already checked", "14:02, counter-1"],
        ),
        (
            result("wrong_venue", venue_name="Kallion Studio"),
            "fi",
            ["HYLÄTTY", "Toinen studio:", "Kallion Studio"],
        ),
        (result("invalid", reason="not_smartum"), "en", ["REFUSED", "Not a SmartumPay code"]),
        (result("invalid", reason="bad_signature"), "fi", ["HYLÄTTY", "Virheellinen koodi"]),
        (result("invalid", reason="unknown_kid"), "sv", ["AVVISAT", "Ogiltig kod"]),
        (result("invalid", reason="brand_new_reason"), "en", ["REFUSED", "Invalid code"]),
        (result("cancelled"), "en", ["REFUSED", "Payment was cancelled"]),
        (
            result("cancelled", "cancel", amount_cents=1000, at=PAID),
            "fi",
            ["PERUTTU", "10,00 €", "Peruttu klo 14.02"],
        ),
        (
            result("not_eligible", "charge", service_name="Kuumakivihieronta"),
            "fi",
            ["HYLÄTTY", "Ei kelpaa:", "Kuumakivihieronta"],
        ),
        (
            result("insufficient_funds", "charge", balance_cents=1250),
            "fi",
            ["HYLÄTTY", "Saldo ei riitä", "Saldo 12,50 €"],
        ),
        (result("paycode_used", "charge"), "en", ["REFUSED", "Pay code already used"]),
        (result("needs_network", "charge"), "en", ["REFUSED", "Network needed", "Try again soon"]),
        (
            result("needs_network", reason="limit_amount"),
            "en",
            ["REFUSED", "Network needed", "Over offline limit"],
        ),
        (
            result("needs_network", reason="disk_full"),
            "sv",
            ["AVVISAT", "Nätverk behövs", "Minnet är fullt"],
        ),
        (
            result("needs_network", reason="no_idea"),
            "en",
            ["REFUSED", "Network needed", "Try again soon"],
        ),
        (
            result("charged", "charge", amount_cents=4000, service_name="Jalkahieronta"),
            "sv",
            ["DEBITERAT", "40,00 €", "Jalkahieronta"],
        ),
    ],
)
def test_result_texts(view: Result, lang: str, expected: list[str]) -> None:
    joined = [" ".join(t.split()) for t in _merge_wrapped(compose(view, lang))]
    assert joined == expected


def _merge_wrapped(frame: layout.Frame) -> list[str]:
    """Lines of one block (same size, no gap) joined back into one text."""
    merged: list[str] = []
    previous: layout.Line | None = None
    for line in frame.lines:
        same = (
            previous is not None
            and previous.size == line.size
            and (line.y == previous.y + previous.size)
            and line.y > 16
        )
        if same:
            merged[-1] += " " + line.text
        else:
            merged.append(line.text)
        previous = line
    return merged


def test_long_data_is_cut_with_an_ellipsis_inside_the_panel() -> None:
    name = "Hyvinvointikeskus Mäntymäen Kuumakivihieronta ja Kylpylä Oy " * 2
    frame = compose(result("checked", amount_cents=6500, venue_name=name, at=PAID), "fi")
    venue = next(ln for ln in frame.lines if ln.text.startswith("Hyvinvointi"))
    assert venue.cut and venue.text.endswith("…")
    assert all(inside(b) for b in frame.boxes())


def test_ready_invites_a_scan_and_shows_state_icons() -> None:
    now = datetime(2025, 5, 14, 9, 5, tzinfo=HKI)
    plain = compose(views.Ready(now=now), "fi")
    assert plain.texts()[0] == "9.05"
    assert {"Näytä", "QR-koodi"} <= set(plain.texts())
    assert [i.name for i in plain.icons] == ["qr"]
    busy = compose(views.Ready(now=now, offline=True, clock_warning=True, pending=7), "en")
    assert {"offline", "clock", "upload", "qr"} == {i.name for i in busy.icons}
    assert "7" in busy.texts() and busy.texts()[0] == "09:05"


def test_ready_shifts_a_pixel_per_idle_minute_within_the_panel() -> None:
    now = datetime(2025, 5, 14, 9, 5, tzinfo=HKI)
    base = views.Ready(now=now, offline=True, clock_warning=True, pending=999)
    seen = set()
    lit = None
    for minute in range(len(pages.SHIFTS)):
        view = views.Ready(
            now=now, offline=True, clock_warning=True, pending=999, idle_seconds=minute * 60.0 + 5
        )
        frame = compose(view, "fi")
        assert all(inside(b) for b in frame.boxes())
        image = screens.render(view, "fi")
        seen.add(image.tobytes())
        count = image.histogram()[255]
        lit = count if lit is None else lit
        assert count == lit, "the shift clipped part of the screen"
    assert len(seen) == 9
    assert (
        screens.render(base).tobytes()
        == screens.render(
            views.Ready(now=now, offline=True, clock_warning=True, pending=999, idle_seconds=59.0)
        ).tobytes()
    )
    assert screens.ready_shift(0) == (0, 0) and screens.ready_shift(60.0) != (0, 0)


def test_service_menu_marks_selection_and_scrolls() -> None:
    services = tuple(
        views.Service(f"s{i}", f"Palvelu {i}", 1000 * i, eligible=i != 2) for i in range(1, 6)
    )
    frame = compose(views.ServiceMenu(services, selected=4), "fi")
    assert "Palvelu 5" in frame.texts() and "Palvelu 1" not in frame.texts()
    assert "5/5" in frame.texts() and "50,00 €" in frame.texts()
    selected = next(ln for ln in frame.lines if ln.text == "Palvelu 5")
    assert selected.ink == 0  # dark text on the lit selection bar
    first = compose(views.ServiceMenu(services, selected=0), "fi")
    assert len(first.rules) == 1  # the ineligible service is struck through


def test_other_views_render_their_texts() -> None:
    svc = views.Service("s", "Klassinen hieronta", 6500)
    assert "Veloita? Paina OK" in texts(views.ConfirmCharge(svc), "fi")
    assert "65,00 €" in texts(views.ConfirmCharge(svc), "fi")
    assert "€65.00" in texts(views.CancelConfirm("tx_1", 6500, at=PAID), "en")
    assert "Kutsu huolto" in texts(views.Alarm("journal"), "fi")
    assert "Device fault" in texts(views.Alarm("gremlins"), "en")
    tech = texts(views.TechInfo("counter-7", "10.0.0.2", "1.2.3", 4, online=True), "sv")
    assert all(t in tech for t in ("counter-7", "IP 10.0.0.2", "Version 1.2.3", "online"))
    assert "Ur funktion" in texts(views.OutOfService("stopped"), "sv")
    assert "Annullerar…" in texts(views.Checking("cancel"), "sv")


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        screens.render(views.Checking(), "de")
    with pytest.raises(TypeError):
        screens.render("not a view", "fi")  # type: ignore[arg-type]


def test_font_has_nordic_letters_and_euro() -> None:
    def glyph(char: str) -> bytes:
        image = Image.new("1", (20, 20))
        ImageDraw.Draw(image).text((0, 0), char, font=layout.font(16, True), fill=1)
        assert image.getbbox() is not None, f"{char!r} draws nothing"
        return image.tobytes()

    missing = glyph("\uffff")
    for char, plain in (("ä", "a"), ("ö", "o"), ("å", "a"), ("Ä", "A"), ("Ö", "O"), ("Å", "A")):
        assert glyph(char) not in (glyph(plain), missing)
    assert glyph("€") not in (missing, glyph("E"))


def test_wrap_balances_lines_and_never_splits_words_that_fit() -> None:
    lines = layout.balanced_wrap("Kuumakivihieronta 60 min", 12, False, 126)
    assert lines == ["Kuumakivihieronta", "60 min"]
    assert layout.wrap("abcdefghij", 12, False, 30) == ["abcde", "fghij"]


def test_to_terminal_is_a_faithful_half_block_picture() -> None:
    image = screens.render(dict(SAMPLES)["checked"], "fi")
    text = screens.to_terminal(image)
    rows = text.split("\n")
    assert len(rows) == 32 and all(len(r) == 128 for r in rows)
    assert set(text) <= {" ", "▀", "▄", "█", "\n"}
    back = Image.new("1", (128, 64))
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            back.putpixel((x, 2 * y), int(ch in "▀█"))
            back.putpixel((x, 2 * y + 1), int(ch in "▄█"))
    assert back.tobytes() == image.tobytes()


def test_contact_sheet_holds_every_screen_in_every_language() -> None:
    sheet = screens.contact_sheet(scale=2, per_row=2)
    rows = (len(SAMPLES) + 1) // 2
    assert sheet.width == 2 * (3 * (256 + 8) + 8)
    assert sheet.height > rows * 128


def test_a_long_word_is_split_into_the_fullest_lines_and_ellipsized_at_the_edge() -> None:
    word = "Hyvinvointikeskus" * 20
    lines = layout.wrap(word, 12, False, 126)
    assert "".join(lines) == word
    assert all(layout.text_width(ln, 12, False) <= 126 for ln in lines)
    assert all(len(ln) == 21 for ln in lines[:-1])  # 6-pixel cells: 21 to a line
    short = layout.ellipsize(word, 12, True, 126)
    assert short == word[:20] + "…" and layout.text_width(short, 12, True) <= 126
    assert layout.ellipsize("ab " + "c" * 40, 12, False, 30) == "ab c…"
    assert layout.ellipsize("ab " + "c" * 40, 12, False, 29) == "ab…"  # no space before …
