"""SerialScanner over a real pseudo-terminal: framing, rejected input, unplug and replug."""

from __future__ import annotations

import os
import queue
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware.serial_scanner import MAX_LINE_BYTES, LineFramer, SerialScanner, check_line
from kiosk.events import Scan, ScanFault


class Pty:
    """A pty pair standing in for a USB scanner; the slave is reached through a symlink."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        self.link.unlink(missing_ok=True)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def pty_link(tmp_path: Path) -> Iterator[Pty]:
    pty = Pty(tmp_path / "kiosk-scanner")
    yield pty
    pty.close()


@pytest.fixture
def events() -> queue.Queue:
    return queue.Queue()


@pytest.fixture
def scanner(pty_link: Pty, events: queue.Queue) -> Iterator[SerialScanner]:
    s = SerialScanner(str(pty_link.link), baud=9600, line_timeout=0.2, on_event=events.put)
    s.start()
    assert wait_until(lambda: s.connected)
    yield s
    s.stop()


def take(events: queue.Queue, n: int) -> list[Scan | ScanFault]:
    return [events.get(timeout=5.0) for _ in range(n)]


def texts(got: list[Scan | ScanFault]) -> list[str]:
    return [e.text if isinstance(e, Scan) else f"fault:{e.reason}" for e in got]


def test_cr_lf_and_crlf_terminate_codes(scanner: SerialScanner, pty_link: Pty, events) -> None:
    pty_link.write(b"AAA\rBBB\nCCC\r\nDDD\r")
    pty_link.write(b"\nEEE\r\n\r\n")
    got = take(events, 5)
    assert texts(got) == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    assert all(e.source == "serial" for e in got)
    assert scanner.last_seen_at is not None
    assert events.empty()


def test_junk_is_rejected_and_reading_goes_on(scanner, pty_link: Pty, events) -> None:
    pty_link.write(b"\x00\x01\x1b[2Jjunk\r\n")
    pty_link.write(b"\xff\xfe\xfa\xfb\r\n")
    pty_link.write(b"tab\tok\r\n")
    got = take(events, 3)
    assert texts(got) == ["fault:binary", "fault:not_utf8", "tab\tok"]
    assert "0x00" in got[0].detail  # the detail names the byte, never the content


def test_over_long_line_is_rejected_once(scanner, pty_link: Pty, events) -> None:
    pty_link.write(b"A" * 5000)
    pty_link.write(b"B" * 3000 + b"\r\n")
    pty_link.write(b"C" * MAX_LINE_BYTES + b"\n")
    got = take(events, 2)
    assert texts(got)[0] == "fault:too_long"
    assert got[1] == Scan("C" * MAX_LINE_BYTES, "serial", got[1].at)
    assert events.empty()


def test_partial_line_times_out(scanner, pty_link: Pty, events) -> None:
    pty_link.write(b"PART")
    fault = events.get(timeout=5.0)
    assert isinstance(fault, ScanFault) and fault.reason == "partial"
    assert "4 bytes" in fault.detail
    pty_link.write(b"WHOLE\n")
    assert texts(take(events, 1)) == ["WHOLE"]


def test_unplug_and_replug_without_restart(scanner, pty_link: Pty, events) -> None:
    pty_link.write(b"BEFORE\n")
    assert texts(take(events, 1)) == ["BEFORE"]
    pty_link.unplug()
    gone = events.get(timeout=5.0)
    assert isinstance(gone, ScanFault) and gone.reason == "unplugged"
    assert not scanner.connected
    pty_link.plug()
    back = events.get(timeout=10.0)
    assert isinstance(back, ScanFault) and back.reason == "replugged"
    assert scanner.connected
    pty_link.write(b"AFTER\r\n")
    assert texts(take(events, 1)) == ["AFTER"]


def test_absent_port_at_start_is_reported_then_found(tmp_path: Path, events) -> None:
    link = tmp_path / "later"
    s = SerialScanner(str(link), line_timeout=0.2, on_event=events.put)
    s.start()
    try:
        gone = events.get(timeout=5.0)
        assert isinstance(gone, ScanFault) and gone.reason == "unplugged"
        assert "scanner unplugged or wrong [scanner] port" in gone.detail
        pty = Pty(link)
        try:
            back = events.get(timeout=10.0)
            assert isinstance(back, ScanFault) and back.reason == "replugged"
            pty.write(b"HELLO\n")
            assert texts(take(events, 1)) == ["HELLO"]
        finally:
            pty.close()
    finally:
        s.stop()
    assert not s.connected


def test_loop_url_through_serial_for_url(events) -> None:
    ports = []

    def factory(port: str, **kwargs):
        import serial

        ports.append(serial.serial_for_url(port, **kwargs))
        ports[-1].write(b"LOOPED\r\n")
        return ports[-1]

    s = SerialScanner("loop://", line_timeout=0.2, on_event=events.put, serial_factory=factory)
    s.start()
    try:
        assert texts(take(events, 1)) == ["LOOPED"]
    finally:
        s.stop()
    assert not ports[0].is_open  # the scanner closes what it opened


def test_line_sent_in_two_parts_across_read_timeouts_is_one_code(pty_link: Pty, events) -> None:
    s = SerialScanner(str(pty_link.link), line_timeout=2.0, on_event=events.put)
    s.start()
    try:
        assert wait_until(lambda: s.connected)
        pty_link.write(b"FIRST-")
        assert wait_until(lambda: s.last_seen_at is not None)
        time.sleep(0.35)  # several read timeouts (0.1 s) pass, within line_timeout
        pty_link.write(b"SECOND\r\n")
        assert texts(take(events, 1)) == ["FIRST-SECOND"]
        assert events.empty()
    finally:
        s.stop()


class HeldUpPort:
    """A real pyserial port whose reader is held up once, right after a read that found
    nothing following one that found bytes, as a busy CPU or another thread may hold it
    up; *meanwhile* runs during the hold (the scanner sends the rest of its line)."""

    def __init__(self, port: Any, meanwhile: Callable[[], None], hold_s: float) -> None:
        self._port = port
        self._meanwhile: Callable[[], None] | None = meanwhile
        self._hold_s = hold_s
        self._got_bytes = False

    @property
    def in_waiting(self) -> int:
        return int(self._port.in_waiting)

    def read(self, size: int) -> bytes:
        data = bytes(self._port.read(size))
        if data:
            self._got_bytes = True
        elif self._got_bytes and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
            time.sleep(self._hold_s)
        return data

    def close(self) -> None:
        self._port.close()


def test_reader_held_up_after_a_quiet_read_does_not_split_a_line(pty_link: Pty, events) -> None:
    """Only time the port was seen quiet counts toward line_timeout, not the reader's delay."""
    import serial

    def factory(port: str, **kwargs: Any) -> HeldUpPort:
        tail = lambda: pty_link.write(b"TAIL\r\n")  # noqa: E731
        return HeldUpPort(serial.serial_for_url(port, **kwargs), tail, hold_s=1.5)

    s = SerialScanner(
        str(pty_link.link), line_timeout=1.0, on_event=events.put, serial_factory=factory
    )
    s.start()
    try:
        assert wait_until(lambda: s.connected)
        pty_link.write(b"HEAD-")  # the rest comes while the reader is held up
        assert texts(take(events, 1)) == ["HEAD-TAIL"]  # not fault:partial, then "TAIL"
        time.sleep(0.5)
        assert events.empty()
    finally:
        s.stop()


def test_a_second_reader_cannot_open_the_port_in_use(
    scanner: SerialScanner, pty_link: Pty, events
) -> None:
    """Two readers of one port would share its bytes (and opening flushes its input):
    the second one is refused, told why, and the first reads every line whole."""
    other: queue.Queue = queue.Queue()
    second = SerialScanner(str(pty_link.link), line_timeout=0.2, on_event=other.put)
    second.start()
    try:
        refused = other.get(timeout=5.0)
        assert isinstance(refused, ScanFault) and refused.reason == "unplugged"
        assert "in use by another program" in refused.detail
        assert not second.connected
        codes = [f"CODE-{i:02d}-" + "x" * 400 for i in range(20)]
        for code in codes:
            pty_link.write(code.encode() + b"\r\n")
        assert texts(take(events, len(codes))) == codes
        assert events.empty()
        assert other.empty() and not second.connected
    finally:
        second.stop()
    scanner.stop()  # the port is free again: a new reader opens it
    third = SerialScanner(str(pty_link.link), line_timeout=0.2, on_event=other.put)
    third.start()
    try:
        assert wait_until(lambda: third.connected)
    finally:
        third.stop()


# --- pure framing -----------------------------------------------------------------------


def test_framer_handles_split_crlf_and_boundaries() -> None:
    framer = LineFramer("serial", line_timeout=0.5)
    assert texts(framer.feed(b"ab", 0.0)) == []
    assert texts(framer.feed(b"c\r", 0.1)) == ["abc"]
    assert texts(framer.feed(b"\n", 0.2)) == []  # the LF of a split CRLF is not an empty code
    assert framer.expire(5.0) is None  # nothing pending
    assert texts(framer.feed(b"x" * (MAX_LINE_BYTES + 1), 6.0)) == ["fault:too_long"]
    assert framer.expire(9.0) is None  # the over-long line was already reported
    assert texts(framer.feed(b"ok\n", 9.1)) == ["ok"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"plain ascii", "plain ascii"),
        ("äöå €".encode(), "äöå €"),
        (b"del\x7f", ("binary", "control byte 0x7f at 3")),
        ("c1\u0085".encode(), ("binary", "control character U+0085")),
        (b"\xc3", ("not_utf8", "invalid byte at 0 of 1")),
    ],
)
def test_check_line(line: bytes, expected) -> None:
    assert check_line(line) == expected
