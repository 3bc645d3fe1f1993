"""Stdin and scripted scanners."""

from __future__ import annotations

import io
import os
import queue

from hardware.scanners import ScriptScanner, StdinScanner
from kiosk.events import Scan, ScanFault


def test_script_scanner_reports_at_once() -> None:
    got: list = []
    s = ScriptScanner(got.append)
    s.start()
    s.feed("123456789012")
    s.stop()
    assert len(got) == 1 and isinstance(got[0], Scan)
    assert (got[0].text, got[0].source) == ("123456789012", "script")


def test_stdin_scanner_reads_text_stream_lines() -> None:
    got: queue.Queue = queue.Queue()
    s = StdinScanner(got.put, stream=io.StringIO("first\r\n\nsecond\nbad\x00line\nlast"))
    s.start()
    assert s.finished.wait(5.0)
    s.stop()
    events = [got.get_nowait() for _ in range(got.qsize())]
    assert [e.text for e in events if isinstance(e, Scan)] == ["first", "second", "last"]
    assert [e.reason for e in events if isinstance(e, ScanFault)] == ["binary"]
    assert all(e.source == "stdin" for e in events)


def test_stdin_scanner_on_a_pipe_stops_while_waiting() -> None:
    r, w = os.pipe()
    got: queue.Queue = queue.Queue()
    with os.fdopen(r, "r") as stream:
        s = StdinScanner(got.put, stream=stream)
        s.start()
        os.write(w, "ääkköset\n".encode())
        event = got.get(timeout=5.0)
        assert isinstance(event, Scan) and event.text == "ääkköset"
        s.stop(timeout=2.0)  # nothing more is written: stop must not hang on the read
        assert s.finished.is_set()
    os.close(w)
