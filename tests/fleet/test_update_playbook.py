"""fleet/update.yml: waves, health gate, rollback and stop, run by ansible-playbook for real.

Three kiosks in inventory order a (wave 1: one host), b (wave 2: 10 %, at least one),
c (wave 3: the rest). Each runs the real scripts/update-remote.sh against its own root
folder (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_hosts import needs_root, wheel, write_inventory

pytestmark = needs_root

FAST = {"kiosk_settle_s": 0, "kiosk_ready_timeout_s": 4, "kiosk_health_delay_s": 0}


def started(pi: Any, version: str) -> bool:
    return any(line.startswith(f"started {version} ") for line in pi.calls())


def setup(kiosk_hosts: Any, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    hosts = kiosk_hosts(["kiosk-a", "kiosk-b", "kiosk-c"])
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"studio_one": {"kiosk-a": hosts["kiosk-a"]}, "studio_two": {
            "kiosk-b": hosts["kiosk-b"], "kiosk-c": hosts["kiosk-c"]}},
    )  # fmt: skip
    return hosts, inventory


def test_failing_update_on_the_second_host_stops_the_rollout(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path
) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path)
    hosts["kiosk-b"].mark("broken", "0.2.0")  # the new release fails to start on b
    new = wheel(tmp_path, "0.2.0")
    result = ansible("update.yml", inventory, kiosk_wheel=str(new), **FAST)
    assert result.returncode != 0
    a, b, c = hosts["kiosk-a"], hosts["kiosk-b"], hosts["kiosk-c"]
    assert (a.current(), a.previous()) == ("0.2.0", "0.1.0") and a.unit_state() == "active"
    # b tried 0.2.0, its update script rolled back: it runs 0.1.0 again.
    assert started(b, "0.2.0") and b.current() == "0.1.0" and b.unit_state() == "active"
    assert not (b.opt / "0.2.0").exists()
    # c was never touched: the rollout stopped at b.
    assert c.calls() == [] and c.current() == "0.1.0"
    out = result.stdout
    assert "ROLLOUT STOPPED at kiosk-b: Install the release" in out
    assert "kiosk-b runs 0.1.0 (as before the update)" in out
    assert "updated to 0.2.0: kiosk-a" in out and "not started: kiosk-c" in out
    assert "kiosk-b: update to 0.2.0 failed" in out and "rollout stopped" in out


def test_failing_health_gate_is_rolled_back_and_stops_the_rollout(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path
) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path)
    # 0.2.0 comes up on b, but quarantines a request: the health gate refuses it.
    (hosts["kiosk-b"].state / "quarantines").write_text("0.2.0\n")
    new = wheel(tmp_path, "0.2.0")
    result = ansible("update.yml", inventory, kiosk_wheel=str(new), kiosk_health_retries=2, **FAST)
    assert result.returncode != 0
    a, b, c = hosts["kiosk-a"], hosts["kiosk-b"], hosts["kiosk-c"]
    assert a.current() == "0.2.0"
    assert started(b, "0.2.0")
    assert b.current() == "0.1.0" and b.unit_state() == "active"  # rolled back by Ansible
    assert b.calls()[-1].startswith("kiosk status") or "started 0.1.0 active" in b.calls()
    assert c.calls() == [] and c.current() == "0.1.0"
    assert "1 request(s) quarantined" in result.stdout
    assert "kiosk-b runs 0.1.0 (as before the update)" in result.stdout


def test_rollout_over_every_wave(ansible: Any, kiosk_hosts: Any, tmp_path: Path) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path)
    new = wheel(tmp_path, "0.2.0")
    result = ansible("update.yml", inventory, kiosk_wheel=str(new), **FAST)
    assert result.returncode == 0, result.stdout
    assert [pi.current() for pi in hosts.values()] == ["0.2.0"] * 3
    # One host at a time: a's health gate ran before b started its update, b's before c's.
    timeline = (tmp_path / "timeline").read_text().split()[::2]
    assert timeline[0] == "kiosk-a" and timeline == sorted(timeline)
    actions = (tmp_path / "timeline").read_text().splitlines()
    for name in hosts:
        mine = [line.split()[1] for line in actions if line.startswith(name + " ")]
        assert mine[0] == "install" and mine[-1] == "status", mine
    assert "kiosk-a: updated, runs 0.2.0" in result.stdout
    assert "kiosk-c: updated, runs 0.2.0" in result.stdout
    # Run again: nothing to install, the health gate still runs.
    again = ansible("update.yml", inventory, kiosk_wheel=str(new), **FAST)
    assert again.returncode == 0, again.stdout
    assert "kiosk-b: already current, runs 0.2.0" in again.stdout
