"""Read-only commands on a damaged journal: report it, exit 1, never move it aside."""

from __future__ import annotations

import json
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


def test_status_tells_how_many_rows_a_salvage_kept_and_lost(
    cli: Any, kiosk_toml: Any, refbackend: ReferenceBackend
) -> None:
    from journal_damage import scramble_table_page

    from kiosk.config import load_config
    from kiosk.journal import Journal
    from kiosk.vocabulary import RequestKind

    config = kiosk_toml()
    path = Path(load_config(config).journal.path)
    with Journal.open(path) as journal:
        for i in range(40):
            body = {"token": "x" * 400, "venue": DEMO_VENUE, "offline": True, "n": i}
            journal.begin(RequestKind.RECEIPT, body, tx=f"tx_{i:016d}", offline=True)
    scramble_table_page(path, "requests")
    Journal.open(path).close()  # as kiosk run opens it: mended
    code, out, _ = cli("status", "--json", "--config", str(config))
    assert code == 0
    doc = json.loads(out)["journal_recovery"]
    assert doc["how"] == "salvaged" and doc["old_file"].startswith("journal.db.corrupt-")
    assert doc["salvaged"]["requests"] + doc["lost"]["requests"] == 40
    assert doc["lost"]["requests"] > 0 and doc["lost_uncounted"] == []
    code, out, _ = cli("status", "--config", str(config))
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("journal repaired"))
    assert f"{doc['rows_salvaged']} rows salvaged, {doc['rows_lost']} lost" in line
