"""Keyboard-wedge scanners: Linux key codes to text for the US and Finnish layouts.

A HID scanner "types" a code as key events; which character a key code means
depends on the keyboard layout the scanner was set to. ``KeyParser`` is pure
(no evdev): it is fed ``(code, value)`` pairs of EV_KEY events (value 1 press,
0 release, 2 auto-repeat) and tracks Shift, AltGr, Ctrl and Caps Lock itself.
Enter (main or keypad) ends a code. Finnish dead keys (´ ` ¨ ^ ~) combine with
the next letter (é, ü ...), or give the accent itself before a space.
"""

from __future__ import annotations

import unicodedata

__all__ = ["KEY", "LAYOUTS", "KeyParser"]

# Linux input-event-codes.h
KEY = {
    "ESC": 1, "MINUS": 12, "EQUAL": 13, "BACKSPACE": 14, "TAB": 15, "LEFTBRACE": 26,
    "RIGHTBRACE": 27, "ENTER": 28, "LEFTCTRL": 29, "SEMICOLON": 39, "APOSTROPHE": 40,
    "GRAVE": 41, "LEFTSHIFT": 42, "BACKSLASH": 43, "COMMA": 51, "DOT": 52, "SLASH": 53,
    "RIGHTSHIFT": 54, "KPASTERISK": 55, "LEFTALT": 56, "SPACE": 57, "CAPSLOCK": 58,
    "KPMINUS": 74, "KPPLUS": 78, "KPDOT": 83, "102ND": 86, "KPENTER": 96, "RIGHTCTRL": 97,
    "KPSLASH": 98, "RIGHTALT": 100,
}  # fmt: skip
for _i, _d in enumerate("1234567890"):
    KEY[_d] = 2 + _i
for _row, _first in (("QWERTYUIOP", 16), ("ASDFGHJKL", 30), ("ZXCVBNM", 44)):
    for _i, _c in enumerate(_row):
        KEY[_c] = _first + _i
for _d, _code in zip("7894561230", (71, 72, 73, 75, 76, 77, 79, 80, 81, 82), strict=True):
    KEY[f"KP{_d}"] = _code

_SHIFTS = {KEY["LEFTSHIFT"], KEY["RIGHTSHIFT"]}
_CTRLS = {KEY["LEFTCTRL"], KEY["RIGHTCTRL"]}
_ENTERS = {KEY["ENTER"], KEY["KPENTER"]}
_DEAD = {"´": "\u0301", "`": "\u0300", "¨": "\u0308", "^": "\u0302", "~": "\u0303"}

# key -> (plain, shifted, altgr); letters are added below.
_COMMON: dict[str, tuple[str, str, str]] = {
    "SPACE": (" ", " ", " "), "TAB": ("\t", "\t", "\t"),
    "KPASTERISK": ("*", "*", ""), "KPMINUS": ("-", "-", ""), "KPPLUS": ("+", "+", ""),
    "KPDOT": (".", ".", ""), "KPSLASH": ("/", "/", ""),
    **{f"KP{d}": (d, d, "") for d in "0123456789"},
}  # fmt: skip
_US: dict[str, tuple[str, str, str]] = {
    **{d: (d, s, "") for d, s in zip("1234567890", "!@#$%^&*()", strict=True)},
    "MINUS": ("-", "_", ""), "EQUAL": ("=", "+", ""), "LEFTBRACE": ("[", "{", ""),
    "RIGHTBRACE": ("]", "}", ""), "SEMICOLON": (";", ":", ""), "APOSTROPHE": ("'", '"', ""),
    "GRAVE": ("`", "~", ""), "BACKSLASH": ("\\", "|", ""), "COMMA": (",", "<", ""),
    "DOT": (".", ">", ""), "SLASH": ("/", "?", ""), "102ND": ("\\", "|", ""),
}  # fmt: skip
_FI: dict[str, tuple[str, str, str]] = {
    **{d: (d, s, "") for d, s in zip("1234567890", '!"#¤%&/()=', strict=True)},
    "2": ("2", '"', "@"), "3": ("3", "#", "£"), "4": ("4", "¤", "$"), "5": ("5", "%", "€"),
    "7": ("7", "/", "{"), "8": ("8", "(", "["), "9": ("9", ")", "]"), "0": ("0", "=", "}"),
    "MINUS": ("+", "?", "\\"), "EQUAL": ("´", "`", ""), "LEFTBRACE": ("å", "Å", ""),
    "RIGHTBRACE": ("¨", "^", "~"), "SEMICOLON": ("ö", "Ö", ""), "APOSTROPHE": ("ä", "Ä", ""),
    "GRAVE": ("§", "½", ""), "BACKSLASH": ("'", "*", ""), "COMMA": (",", ";", ""),
    "DOT": (".", ":", ""), "SLASH": ("-", "_", ""), "102ND": ("<", ">", "|"),
    "E": ("e", "E", "€"),
}  # fmt: skip
_FI_DEAD_KEYS = {"EQUAL", "RIGHTBRACE"}


def _table(
    specific: dict[str, tuple[str, str, str]], dead_keys: set[str]
) -> tuple[dict[int, tuple[str, str, str]], set[int]]:
    table = {KEY[c]: (c.lower(), c, "") for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    table.update({KEY[k]: v for k, v in _COMMON.items()})
    table.update({KEY[k]: v for k, v in specific.items()})
    return table, {KEY[k] for k in dead_keys}


LAYOUTS = {"us": _table(_US, set()), "fi": _table(_FI, _FI_DEAD_KEYS)}


class KeyParser:
    """Assembles key events into lines for one layout (``us`` or ``fi``). Not thread-safe."""

    def __init__(self, layout: str = "us", max_chars: int = 4097) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown keyboard layout {layout!r}; use one of {sorted(LAYOUTS)}")
        self._table, self._dead_keys = LAYOUTS[layout]
        self._max = max_chars
        self._shift: set[int] = set()
        self._ctrl: set[int] = set()
        self._altgr = False
        self._caps = False
        self._dead = ""
        self._chars: list[str] = []

    @property
    def pending(self) -> bool:
        """True while part of a line has been typed."""
        return bool(self._chars or self._dead)

    def reset(self) -> None:
        """Forget a partial line (modifier state is kept: keys may still be held)."""
        self._chars.clear()
        self._dead = ""

    def feed(self, code: int, value: int) -> str | None:
        """Take one EV_KEY event; returns the finished line when Enter is pressed.

        The line is returned even if empty; lines are capped at *max_chars*
        characters so the caller can tell an over-long one.
        """
        if code in _SHIFTS:
            (self._shift.add if value else self._shift.discard)(code)
            return None
        if code in _CTRLS:
            (self._ctrl.add if value else self._ctrl.discard)(code)
            return None
        if code == KEY["RIGHTALT"]:
            self._altgr = bool(value)
            return None
        if value == 0:
            return None
        if code == KEY["CAPSLOCK"]:
            if value == 1:
                self._caps = not self._caps
            return None
        if code in _ENTERS:
            line = "".join(self._chars) + self._dead
            self.reset()
            return line
        entry = self._table.get(code)
        if entry is None or self._ctrl:
            return None  # function keys, arrows, Ctrl combinations: not part of a code
        char = self._char(entry)
        if not char:
            return None
        if code in self._dead_keys:
            self._emit(self._dead)  # two accents in a row: the first stands alone
            self._dead = char
            return None
        if self._dead:
            char = _compose(self._dead, char)
            self._dead = ""
        self._emit(char)
        return None

    def _char(self, entry: tuple[str, str, str]) -> str:
        plain, shifted, altgr = entry
        if self._altgr:
            return altgr
        upper = bool(self._shift)
        if plain.isalpha() and self._caps:
            upper = not upper
        return shifted if upper else plain

    def _emit(self, text: str) -> None:
        for char in text:
            if len(self._chars) < self._max:
                self._chars.append(char)


def _compose(accent: str, char: str) -> str:
    if char == " ":
        return accent
    combined = unicodedata.normalize("NFC", char + _DEAD[accent])
    return combined if len(combined) == 1 else accent + char
