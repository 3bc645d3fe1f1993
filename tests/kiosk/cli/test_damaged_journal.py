"""Read-only commands on a damaged journal: report it, exit 1, never move it aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from journal_damage import scramble_index

from refbackend import DEMO_VENUE, ReferenceBackend


@pytest.mark.parametrize(
    "argv",
    [["status", "--json"], ["status"], ["history", "--local"], ["sync"]],
)
def test_read_only_commands_leave_a_damaged_journal_in_place(
    cli: Any, counter: Any, refbackend: ReferenceBackend, argv: list[str]
) -> None:
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    path = Path(counter.cfg.journal.path)
    scramble_index(path)
    before = path.read_bytes()
    code, out, err = cli(*argv, "--config", counter.cfg.source)
    assert code == 1
    assert "damaged" in err and "systemctl restart kiosk" in err
    assert out == ""
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
