"""Scanner sources that went away: whether another still reads codes."""

from __future__ import annotations

from kiosk.flows.tech import UnpluggedSources


def test_unplugged_says_whether_another_source_still_reads() -> None:
    sources = UnpluggedSources(("camera", "serial"))
    assert sources.unplugged("serial") is True
    assert sources.unplugged("camera") is False
    sources.replugged("serial")
    assert sources.unplugged("camera") is True  # serial is back and reads


def test_a_single_source_has_no_other() -> None:
    assert UnpluggedSources(("serial",)).unplugged("serial") is False
