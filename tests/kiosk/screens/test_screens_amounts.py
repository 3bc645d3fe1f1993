"""Receipt results with the amount checked against the price list."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.amounts import match_amount
from kiosk.languages import LANGUAGES
from kiosk.screens import layout
from kiosk.screens.pages import compose
from kiosk.views import AmountMatch, Outcome, Result, Service

PAID = datetime(2025, 5, 14, 14, 2, tzinfo=ZoneInfo("Europe/Helsinki"))
CLASSIC = Service("svc_1", "Klassinen hieronta 60 min", 6500)
FOOT = Service("svc_4", "Jalkahieronta 30 min", 3500)
SHORT = Service("svc_9", "Hieronta", 5000)


def receipt(cents: int, match: AmountMatch | None, word: str = "checked") -> Result:
    return Result(
        Outcome(
            word, "receipt", amount_cents=cents, venue_name="Helmi", at=PAID, amount_match=match
        )
    )


def texts(view: Result, lang: str) -> list[str]:
    return [" ".join(t.split()) for t in compose(view, lang).texts()]


def joined(view: Result, lang: str) -> str:
    return " ".join(texts(view, lang))


def test_a_matched_amount_names_its_service_instead_of_the_studio() -> None:
    view = receipt(6500, match_amount(6500, (CLASSIC, FOOT)))
    frame = compose(view, "fi")
    assert frame.texts()[:2] == ["HYVÄKSYTTY", "65,00 €"]
    assert "Klassinen hieronta 60 min" in joined(view, "fi")
    assert "Helmi" not in joined(view, "fi")
    assert [i.name for i in frame.icons] == ["check"]
    assert all(not ln.cut for ln in frame.lines)


def test_a_short_service_name_leaves_room_for_the_payment_time() -> None:
    view = receipt(5000, AmountMatch((SHORT,)))
    assert texts(view, "en") == ["ACCEPTED", "€50.00", "Hieronta", "Paid 14:02"]
    offline = receipt(5000, AmountMatch((SHORT,)), "checked_offline")
    assert texts(offline, "sv") == ["GODKÄNT", "50,00 €", "Hieronta", "Kontrollerad offline"]
    assert "offline" in [i.name for i in compose(offline, "sv").icons]


def test_two_services_are_listed_one_per_line_keeping_their_length_of_time() -> None:
    view = receipt(10000, match_amount(10000, (CLASSIC, FOOT)))
    frame = compose(view, "fi")
    first, second = frame.texts()[2:]
    assert first.startswith("Klassinen") and first.endswith("… 60 min")
    assert second.startswith("+ Jalkahier") and second.endswith("… 30 min")
    assert [ln.cut for ln in frame.lines[2:]] == [True, True]  # shortened, and says so
    short_pair = receipt(8500, AmountMatch((SHORT, Service("s", "Jalkahieronta", 3500))))
    assert texts(short_pair, "fi")[2:4] == ["Hieronta", "+ Jalkahieronta"]
    assert not any(ln.cut for ln in compose(short_pair, "fi").lines)


def test_the_same_service_twice_is_written_as_two_times() -> None:
    view = receipt(7000, match_amount(7000, (CLASSIC, FOOT)))
    assert "2 × Jalkahieronta 30 min" in joined(view, "sv")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "fi",
            [
                "TARKISTA SUMMA",
                "Maksettu 45,00 €",
                "Klassinen hieronta",
                "60 min: 65,00 €",
                "Ero -20,00 €",
            ],
        ),
        (
            "sv",
            [
                "KOLLA BELOPPET",
                "Betalt 45,00 €",
                "Klassinen hieronta",
                "60 min: 65,00 €",
                "Skillnad -20,00 €",
            ],
        ),
        (
            "en",
            [
                "CHECK THE AMOUNT",
                "Paid €45.00",
                "Klassinen hieronta",
                "60 min: €65.00",
                "Difference -€20.00",
            ],
        ),
    ],
)
def test_a_mismatch_shows_the_nearest_service_its_price_and_the_difference(
    lang: str, expected: list[str]
) -> None:
    view = receipt(4500, AmountMatch((CLASSIC,), -2000))
    assert texts(view, lang) == expected
    frame = compose(view, lang)
    assert frame.icons[0].name == "alert" and "check" not in [i.name for i in frame.icons]
    assert all(not ln.cut for ln in frame.lines)


def test_an_amount_above_the_price_has_a_plus_and_offline_keeps_its_icon() -> None:
    view = receipt(9900, match_amount(9900, (CLASSIC, FOOT)), "checked_offline")
    assert texts(view, "fi")[-1] == "Ero +34,00 €"
    assert [i.name for i in compose(view, "fi").icons] == ["alert", "offline"]


def test_a_very_long_nearest_name_is_shortened_but_price_and_difference_stay() -> None:
    long_name = Service(
        "x", "Aromaterapeuttinen kokovartalohieronta lämpimillä öljyillä 90 min", 9900
    )
    view = receipt(7000, AmountMatch((long_name,), -2900))
    frame = compose(view, "fi")
    joined_texts = joined(view, "fi")
    assert "99,00 €" in joined_texts and "Ero -29,00 €" in joined_texts
    assert any(ln.cut for ln in frame.lines)
    box = layout.Box(0, 0, 128, 64)
    for b in frame.boxes():
        assert b.x >= box.x and b.y >= box.y and b.x + b.w <= 128 and b.y + b.h <= 64


def test_without_a_price_list_the_receipt_looks_as_before() -> None:
    plain = receipt(6500, None)
    assert texts(plain, "fi") == ["HYVÄKSYTTY", "65,00 €", "Helmi", "Maksettu klo 14.02"]


def test_offline_refusal_for_too_many_conflicts() -> None:
    view = Result(Outcome("needs_network", "receipt", reason="conflicts"))
    assert "Too many conflicts in 24 h" in joined(view, "en")
    assert "För många konflikter på 24 h" in joined(view, "sv")
    assert "Liikaa ristiriitoja 24 h:ssa" in joined(view, "fi")
    assert "Try again soon" not in joined(view, "en")


@pytest.mark.parametrize(
    "name",
    ["", " ", "Studio\nAurinko\u2029x", "W" * 300, "a " * 80, "🙂" * 30, "=HYPERLINK(1) 60 min"],
)
@pytest.mark.parametrize("cents", [5000, 10000, 7000])
def test_any_service_name_from_the_backend_stays_inside_the_panel(name: str, cents: int) -> None:
    other = Service("o", name, 5000)
    match = match_amount(cents, (Service("x", name, 3500), other))
    assert match is not None
    for word in ("checked", "checked_offline"):
        for lang in LANGUAGES:
            frame = compose(receipt(cents, match, word), lang)
            for b in frame.boxes():
                assert b.x >= 0 and b.y >= 0 and b.x + b.w <= 128 and b.y + b.h <= 64, (name, b)
