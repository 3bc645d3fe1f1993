"""Texts exist in all three languages; numbers and times follow each language."""

from __future__ import annotations

import string
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.screens import i18n, results
from kiosk.views import OUTCOME_WORDS


def fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_key_has_every_language_with_the_same_placeholders() -> None:
    for key, texts in i18n.STRINGS.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert all(t.strip() for t in texts.values()), key
        assert len({frozenset(fields(t)) for t in texts.values()}) == 1, key


def test_every_outcome_word_and_reason_has_a_text() -> None:
    refusals = set(OUTCOME_WORDS) - {"checked", "checked_offline", "charged"}
    for word in refusals:
        assert i18n.has(f"word.{word}"), word
    for reason in results.INVALID_REASONS | results.DETAIL_REASONS:
        assert i18n.has(f"reason.{reason}"), reason


@pytest.mark.parametrize(
    ("cents", "lang", "expected"),
    [
        (6500, "fi", "65,00 €"),
        (6500, "sv", "65,00 €"),
        (6500, "en", "€65.00"),
        (5, "fi", "0,05 €"),
        (123456, "fi", "1 234,56 €"),
        (123456, "en", "€1,234.56"),
        (-250, "en", "-€2.50"),
        (0, "sv", "0,00 €"),
    ],
)
def test_format_amount(cents: int, lang: str, expected: str) -> None:
    assert i18n.format_amount(cents, lang) == expected


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_language_formats_money_and_times(lang: str) -> None:
    at = datetime(2025, 5, 14, 9, 5, tzinfo=ZoneInfo("Europe/Helsinki"))
    assert "9" in i18n.format_time(at, lang) and "05" in i18n.format_clock(at, lang)
    assert "1" in i18n.format_amount(123456, lang) and "56" in i18n.format_amount(123456, lang)


def test_a_language_without_texts_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported language 'et'; use one of fi, sv, en"):
        i18n.format_time(datetime(2025, 5, 14, 9, 5), "et")


def test_format_time_per_language() -> None:
    at = datetime(2025, 5, 14, 14, 5, tzinfo=ZoneInfo("Europe/Helsinki"))
    early = at.replace(hour=9)
    assert i18n.format_time(at, "fi") == "klo 14.05"
    assert i18n.format_time(at, "sv") == "kl. 14.05"
    assert i18n.format_time(at, "en") == "14:05"
    assert i18n.format_time(early, "fi") == "klo 9.05"
    assert i18n.format_time(early, "en") == "09:05"


def test_text_fills_placeholders_and_rejects_unknown_language() -> None:
    assert i18n.text("balance", "fi", amount="1,00 €") == "Saldo 1,00 €"
    with pytest.raises(ValueError, match="fi, sv, en"):
        i18n.text("balance", "de", amount="x")
    with pytest.raises(KeyError):
        i18n.text("no.such.key", "fi")
