"""fleet/status.yml: every kiosk's real `kiosk status --json` and release in one table.

Kiosk a is online with one upload pending; kiosk b's backend address answers nothing
and its journal holds an offline check; kiosk c cannot be reached over SSH at all.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from fleet_hosts import KIOSK, kiosk_toml, needs_root, write_inventory

from kiosk.journal import Journal
from refbackend import ReferenceBackend

pytestmark = needs_root


def test_status_table_of_the_fleet(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, refbackend: ReferenceBackend, demo_client: Any
) -> None:
    hosts = kiosk_hosts(["kiosk-a", "kiosk-b"])
    a, b = hosts["kiosk-a"], hosts["kiosk-b"]
    kiosk_toml(a.root / "etc/kiosk/kiosk.toml", refbackend, demo_client, "counter-a")
    config_b = kiosk_toml(b.root / "etc/kiosk/kiosk.toml", refbackend, demo_client, "counter-b")
    config_b.write_text(config_b.read_text().replace(refbackend.url, "http://127.0.0.1:9"))
    created = time.time() - 7200
    with Journal.open(a.root / "etc/kiosk/journal.db") as journal:
        journal.begin("receipt", {"token": "t"}, tx="rcp_a", amount_cents=900, now=created)
    with Journal.open(b.root / "etc/kiosk/journal.db") as journal:
        rid = journal.begin("receipt", {"token": "t"}, tx="rcp_b", amount_cents=4500).id
        journal.record("receipt", "checked_offline", tx="rcp_b", amount_cents=4500,
                       request_id=rid, synced=False)  # fmt: skip
    b.opt.joinpath("current").unlink()
    b.opt.joinpath("current").symlink_to("0.1.0-custom")
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"studio_one": {"kiosk-a": a}, "studio_two": {"kiosk-b": b}},
        kiosk_bin=str(KIOSK),
    )
    doc = json.loads(inventory.read_text())
    doc["all"]["children"]["kiosks"]["children"]["studio_two"]["hosts"]["kiosk-c"] = {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": 9,
        "ansible_python_interpreter": sys.executable,
    }
    inventory.write_text(json.dumps(doc))
    table = tmp_path / "fleet.csv"
    result = ansible("status.yml", inventory, kiosk_status_csv=str(table))
    assert result.returncode == 0

    with table.open(newline="") as f:
        rows = {row["host"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["kiosk-a", "kiosk-b", "kiosk-c"]
    assert rows["kiosk-a"]["release"] == "0.1.0" and rows["kiosk-a"]["online"] == "True"
    assert rows["kiosk-a"]["pending"] == "1" and rows["kiosk-a"]["quarantined"] == "0"
    assert rows["kiosk-a"]["oldest_pending"].startswith(
        time.strftime("%Y-%m-%dT%H", time.gmtime(created))
    )
    assert rows["kiosk-a"]["error"] == ""
    assert rows["kiosk-b"]["release"] == "0.1.0-custom" and rows["kiosk-b"]["online"] == "False"
    assert rows["kiosk-b"]["offline_exposure_cents"] == "4500"
    assert rows["kiosk-b"]["last_sync"] == ""
    assert rows["kiosk-c"]["error"].startswith("unreachable")
    out = result.stdout
    assert "3 kiosk(s): 1 online, 1 offline, 1 not answering; 2 pending upload(s)" in out
    assert "45.00 EUR offline exposure; 0 quarantined" in out
    assert f"Table written to {table}" in out
