"""The counter's display languages and each one's number and time formats.

:class:`Language` is the one list: the configuration's ``[display] language``
choices, the screens' texts (``kiosk.screens.i18n``, checked complete by a
test), ``kiosk demo --lang``, ``kiosk screens --lang`` and the tests'
parametrisation all take it from here. :func:`formats` is the one table of
per-language formats; it is a ``match`` over the whole enum, so a new language
makes mypy name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Formats", "Language", "formats", "language"]


class Language(StrEnum):
    """A display language (its ISO 639-1 code)."""

    FI = "fi"
    SV = "sv"
    EN = "en"


LANGUAGES: tuple[Language, ...] = tuple(Language)
"""Every display language, the default first."""

DEFAULT_LANGUAGE = Language.FI


@dataclass(frozen=True)
class Formats:
    """How one language writes money and clock times.

    ``time`` and ``clock`` are :meth:`str.format` templates over ``h`` (hour) and
    ``m`` (minute); ``money`` over ``sign``, ``euros`` (grouped with ``group``)
    and ``cents``; ``day`` over ``d`` (day), ``m`` (month) and ``mon`` (its
    English abbreviation).
    """

    time: str  # a clock time in a sentence ("Paid 14:05")
    clock: str  # the bare clock of the status row
    money: str
    group: str  # thousands separator
    day: str  # a day of the year, short ("6.12.")


def formats(lang: Language) -> Formats:
    """The formats of *lang*."""
    match lang:
        case Language.FI:
            money = "{sign}{euros},{cents:02d} €"
            return Formats("klo {h}.{m:02d}", "{h}.{m:02d}", money, " ", "{d}.{m}.")
        case Language.SV:
            money = "{sign}{euros},{cents:02d} €"
            return Formats("kl. {h}.{m:02d}", "{h}.{m:02d}", money, " ", "{d}/{m}")
        case Language.EN:
            money = "{sign}€{euros}.{cents:02d}"
            return Formats("{h:02d}:{m:02d}", "{h:02d}:{m:02d}", money, ",", "{d} {mon}")
        case _:
            assert_never(lang)


def language(code: str) -> Language:
    """The language named by *code*. Raises ValueError naming the supported ones."""
    try:
        return Language(code)
    except ValueError:
        supported = ", ".join(LANGUAGES)
        raise ValueError(f"unsupported language {code!r}; use one of {supported}") from None
