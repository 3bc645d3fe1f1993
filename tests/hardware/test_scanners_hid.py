"""Keyboard-wedge scanners: the key-event parser on recorded events (US and Finnish layouts)."""

from __future__ import annotations

import os
import queue
import struct
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardware.hid_scanner import HidScanner
from hardware.keymaps import KEY, KeyParser
from kiosk.errors import DeviceNotFound
from kiosk.events import Scan, ScanFault
from refbackend.tokens import kid_for, sign_receipt

DOWN, UP = 1, 0
SHIFT, ALTGR = KEY["LEFTSHIFT"], KEY["RIGHTALT"]

# How each layout types the characters of a SmartumPay token (base64url, dots, digits).
PUNCT = {
    "us": {"-": ("MINUS", False), "_": ("MINUS", True), ".": ("DOT", False)},
    "fi": {"-": ("SLASH", False), "_": ("SLASH", True), ".": ("DOT", False)},
}


def press(code: int) -> list[tuple[int, int]]:
    return [(code, DOWN), (code, UP)]


def with_mod(mod: int, code: int) -> list[tuple[int, int]]:
    return [(mod, DOWN), *press(code), (mod, UP)]


def typed(text: str, layout: str) -> list[tuple[int, int]]:
    """The events a scanner set to *layout* sends for *text*, then Enter."""
    events: list[tuple[int, int]] = []
    for ch in text:
        if ch.isdigit():
            events += press(KEY[ch])
        elif ch.isalpha():
            events += with_mod(SHIFT, KEY[ch]) if ch.isupper() else press(KEY[ch.upper()])
        else:
            name, shifted = PUNCT[layout][ch]
            events += with_mod(SHIFT, KEY[name]) if shifted else press(KEY[name])
    return [*events, *press(KEY["ENTER"])]


def feed_all(parser: KeyParser, events: list[tuple[int, int]]) -> list[str]:
    lines = []
    for code, value in events:
        line = parser.feed(code, value)
        if line is not None:
            lines.append(line)
    return lines


def token() -> str:
    key = Ed25519PrivateKey.generate()
    return sign_receipt(
        key,
        kid_for(key.public_key()),
        issuer="https://api.smartum.example",
        tx="tx_0123456789abcdef",
        venue="ven_demo0000000000",
        venue_name="Hieronta",
        venue_address="Katu 1",
        amount_cents=6500,
        paid_at=1_760_000_000,
    )


@pytest.mark.parametrize("layout", ["us", "fi"])
def test_whole_token_typed_in_layout(layout: str) -> None:
    text = token()
    assert feed_all(KeyParser(layout), typed(text, layout)) == [text]


def test_us_symbols_and_keypad() -> None:
    events = [
        *with_mod(SHIFT, KEY["2"]),  # @
        *with_mod(SHIFT, KEY["SEMICOLON"]),  # :
        *press(KEY["SLASH"]),
        *press(KEY["KP7"]),
        *press(KEY["KPENTER"]),
    ]
    assert feed_all(KeyParser("us"), events) == ["@:/7"]


def test_finnish_symbols_altgr_and_letters() -> None:
    events = [
        *with_mod(ALTGR, KEY["2"]),  # @
        *with_mod(SHIFT, KEY["7"]),  # /
        *press(KEY["MINUS"]),  # +
        *with_mod(ALTGR, KEY["8"]),  # [
        *with_mod(ALTGR, KEY["E"]),  # €
        *press(KEY["SEMICOLON"]),  # ö
        *with_mod(SHIFT, KEY["APOSTROPHE"]),  # Ä
        *press(KEY["LEFTBRACE"]),  # å
        *press(KEY["ENTER"]),
    ]
    assert feed_all(KeyParser("fi"), events) == ["@/+[€öÄå"]


def test_finnish_dead_keys_combine() -> None:
    events = [
        *press(KEY["EQUAL"]),  # ´ (dead)
        *press(KEY["E"]),  # é
        *press(KEY["RIGHTBRACE"]),  # ¨ (dead)
        *press(KEY["U"]),  # ü
        *with_mod(ALTGR, KEY["RIGHTBRACE"]),  # ~ (dead)
        *press(KEY["SPACE"]),  # ~ alone
        *with_mod(SHIFT, KEY["RIGHTBRACE"]),  # ^ (dead)
        *press(KEY["X"]),  # no ^x: both stay
        *press(KEY["ENTER"]),
    ]
    assert feed_all(KeyParser("fi"), events) == ["éü~^x"]


def test_caps_lock_ctrl_repeat_and_unknown_keys() -> None:
    events = [
        *press(KEY["CAPSLOCK"]),
        *press(KEY["A"]),  # A
        *with_mod(SHIFT, KEY["B"]),  # b (shift undoes caps)
        *press(KEY["1"]),  # digits ignore caps
        *press(KEY["CAPSLOCK"]),
        *with_mod(KEY["LEFTCTRL"], KEY["C"]),  # Ctrl+C is not text
        (KEY["D"], DOWN),
        (KEY["D"], 2),  # auto-repeat
        (KEY["D"], UP),
        *press(59),  # F1
        *press(KEY["ENTER"]),
        *press(KEY["ENTER"]),  # an empty line comes back empty
    ]
    assert feed_all(KeyParser("us"), events) == ["Ab1dd", ""]


def test_parser_caps_line_length_and_rejects_unknown_layout() -> None:
    parser = KeyParser("us", max_chars=10)
    assert feed_all(parser, [*press(KEY["A"]) * 20, *press(KEY["ENTER"])]) == ["a" * 10]
    with pytest.raises(ValueError, match="unknown keyboard layout"):
        KeyParser("de")


# --- HidScanner over a pipe-backed input device ------------------------------------------

_EVENT = struct.Struct("llHHi")


class _Event:
    def __init__(self, type_: int, code: int, value: int) -> None:
        self.type, self.code, self.value = type_, code, value


class PipeInputDevice:
    """An input device whose events arrive on a real pipe, in the kernel's event layout."""

    pipes: queue.Queue[int] = queue.Queue()

    def __init__(self, path: str) -> None:
        if path != "/dev/input/by-id/scanner":
            raise FileNotFoundError(2, "No such file or directory", path)
        self.fd = PipeInputDevice.pipes.get_nowait()
        self.grabbed = False

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def read(self) -> Iterator[_Event]:
        data = os.read(self.fd, _EVENT.size * 64)
        if not data:
            raise OSError(19, "No such device")
        for off in range(0, len(data), _EVENT.size):
            _s, _us, type_, code, value = _EVENT.unpack_from(data, off)
            yield _Event(type_, code, value)

    def close(self) -> None:
        os.close(self.fd)


class FakeEvdev:
    InputDevice = PipeInputDevice


def write_keys(fd: int, events: list[tuple[int, int]]) -> None:
    os.write(fd, b"".join(_EVENT.pack(0, 0, 1, code, value) for code, value in events))


def test_hid_scanner_reads_codes_and_survives_unplug() -> None:
    got: queue.Queue = queue.Queue()
    r1, w1 = os.pipe()
    PipeInputDevice.pipes.put(r1)
    s = HidScanner(
        "/dev/input/by-id/scanner", layout="fi", on_event=got.put, evdev_module=FakeEvdev
    )
    s.start()
    try:
        write_keys(w1, typed("ab-_.9", "fi"))
        first = got.get(timeout=5.0)
        assert isinstance(first, Scan) and (first.text, first.source) == ("ab-_.9", "hid")
        write_keys(w1, press(KEY["A"]))  # no Enter follows
        partial = got.get(timeout=5.0)
        assert isinstance(partial, ScanFault) and partial.reason == "partial"
        r2, w2 = os.pipe()
        PipeInputDevice.pipes.put(r2)
        os.close(w1)  # unplugged
        gone, back = got.get(timeout=5.0), got.get(timeout=10.0)
        assert isinstance(gone, ScanFault) and gone.reason == "unplugged"
        assert isinstance(back, ScanFault) and back.reason == "replugged"
        write_keys(w2, typed("Z1", "fi"))
        again = got.get(timeout=5.0)
        assert isinstance(again, Scan) and again.text == "Z1"
    finally:
        s.stop()
    os.close(w2)


def test_hid_without_evdev_installed_says_how_to_fix() -> None:
    s = HidScanner("/dev/input/event0", on_event=lambda e: None)
    with pytest.raises(DeviceNotFound, match="'hid' extra"):
        s.start()
