"""`kiosk offline clear-conflicts`: stored in the journal, counted from, shown by status."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend


def status(cli: Any, config: str) -> dict[str, Any]:
    code, out, _ = cli("status", "--config", config, "--json")
    assert code == 0
    return dict(json.loads(out))


def test_clear_conflicts_turns_offline_acceptance_back_on(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    config = counter.cfg.source
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    with Journal.open(counter.cfg.journal.path) as journal:
        for i in range(3):
            journal.record("receipt", "conflict", tx=f"tx_{i:016d}", now=time.time() - 60 + i)
    doc = status(cli, config)
    assert (doc["conflicts_24h"], doc["offline_off_for_conflicts"]) == (3, True)
    assert doc["conflicts_cleared_at"] is None
    code, out, _ = cli("status", "--config", config)
    assert "conflicts: 3 in 24 h (limit 3): offline acceptance OFF" in out
    refbackend.pause()
    refused = counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1100)[1])
    assert (refused.word, refused.reason) == ("needs_network", "conflicts")

    code, out, err = cli("offline", "clear-conflicts", "--by", "tech-anna", "--config", config)
    assert code == 0, err
    assert out.startswith("cleared 3 conflict(s) at ") and "by tech-anna" in out
    doc = status(cli, config)
    assert (doc["conflicts_24h"], doc["offline_off_for_conflicts"]) == (0, False)
    assert doc["conflicts_cleared_at"] is not None
    assert len(doc["conflicts"]) == 3  # the record of every conflict stays
    accepted = counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1200)[1])
    assert accepted.word == "checked_offline"


def test_clear_conflicts_json_and_usage(cli: Any, kiosk_toml: Any) -> None:
    config = str(kiosk_toml())
    code, out, _ = cli("offline", "clear-conflicts", "--json", "--config", config)
    assert code == 0
    doc = json.loads(out)
    assert doc["conflicts"] == 0 and doc["by"] and doc["cleared_at"].endswith("Z")
    assert cli("offline", "--config", config)[0] == 2
    assert cli("offline", "clear-everything")[0] == 2
    assert Path(config).exists()
