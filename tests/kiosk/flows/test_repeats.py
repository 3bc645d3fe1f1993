"""The repeat filter: the same text within its source's window is ignored."""

from __future__ import annotations

from kiosk.events import Scan
from kiosk.flows.repeats import FORGET_AFTER_S, MAX_REMEMBERED, RepeatFilter


def test_a_repeat_within_the_window_is_ignored() -> None:
    f = RepeatFilter({"camera": 5.0}, default_window=1.0)
    assert not f.is_repeat(Scan("A", "script", 10.0))
    assert f.is_repeat(Scan("A", "script", 10.9))
    assert not f.is_repeat(Scan("B", "script", 10.9))  # another text


def test_every_sighting_renews_the_window() -> None:
    f = RepeatFilter({}, default_window=1.0)
    assert not f.is_repeat(Scan("A", "hid", 0.0))
    for at in (0.8, 1.6, 2.4):  # held up: each read within 1 s of the one before
        assert f.is_repeat(Scan("A", "hid", at))
    assert not f.is_repeat(Scan("A", "hid", 3.5))


def test_each_source_has_its_window() -> None:
    f = RepeatFilter({"camera": 5.0}, default_window=1.0)
    assert not f.is_repeat(Scan("A", "camera", 0.0))
    assert f.is_repeat(Scan("A", "camera", 4.0))
    assert not f.is_repeat(Scan("B", "serial", 0.0))
    assert not f.is_repeat(Scan("B", "serial", 1.5))


def test_the_same_code_from_two_sources_is_one_scan() -> None:
    f = RepeatFilter({"camera": 5.0}, default_window=3.0)
    assert not f.is_repeat(Scan("A", "camera", 0.0))
    assert f.is_repeat(Scan("A", "serial", 1.0))  # the scanner reads what the camera saw
    assert f.is_repeat(Scan("A", "camera", 2.0))  # and the camera still sees it
    # Taken from the camera to the scanner 4 s later: past the scanner's 3 s, but within
    # the camera's 5 s, the longer of the two windows between sources.
    assert not f.is_repeat(Scan("B", "camera", 10.0))
    assert f.is_repeat(Scan("B", "serial", 14.0))
    assert not f.is_repeat(Scan("B", "serial", 17.5))  # scanner after scanner: its own 3 s
    assert not f.is_repeat(Scan("C", "serial", 20.0))
    assert f.is_repeat(Scan("C", "camera", 24.0))  # camera after scanner: the camera's 5 s
    assert not f.is_repeat(Scan("C", "serial", 30.0))


def test_memory_stays_small() -> None:
    f = RepeatFilter({}, default_window=1.0)
    for n in range(MAX_REMEMBERED + 1):
        f.is_repeat(Scan(f"old-{n}", "script", 0.0))
    f.is_repeat(Scan("new", "script", FORGET_AFTER_S + 1.0))  # forgets the old ones
    assert len(f._seen) == 1
    assert not f.is_repeat(Scan("old-0", "script", FORGET_AFTER_S + 1.5))
