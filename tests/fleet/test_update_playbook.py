"""fleet/update.yml: waves, health gate, rollback and stop, run by ansible-playbook for real.

Three kiosks in inventory order a (wave 1: one host), b (wave 2: 10 %, at least one),
c (wave 3: the rest). Each runs the real scripts/update-remote.sh against its own root
folder (see conftest.py). The release is a locked wheelhouse (kiosk_wheelhouse), as the
kiosks install offline; one test rolls out a single wheel (kiosk_wheel).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from fleet_hosts import FLEET, needs_root, wheel, wheelhouse, write_inventory

pytestmark = needs_root

FAST = {"kiosk_settle_s": 0, "kiosk_ready_timeout_s": 4, "kiosk_health_delay_s": 0}


def started(pi: Any, version: str) -> bool:
    return any(line.startswith(f"started {version} ") for line in pi.calls())


def pip_installs(pi: Any) -> list[str]:
    return [line for line in pi.calls() if line.startswith("venv-python -m pip install")]


def installed_offline_from_staged_wheelhouse(pi: Any) -> bool:
    """The host ran update-remote.sh --wheelhouse with the copy in its staging folder (the
    release's requirements.txt is the copy's requirements.lock, less numpy where the system
    has one)."""
    staged = re.escape(str(pi.state)) + r"/kiosk-update\.[^/ ]+/wheels"
    return any(
        re.search(f" --no-index --find-links {staged} --require-hashes .*"
                  r" --requirement \S+/requirements\.txt$", line)
        for line in pip_installs(pi)
    ) and not any(line.startswith("pip-from-index") for line in pi.calls())  # fmt: skip


def setup(
    kiosk_hosts: Any, tmp_path: Path, names: tuple[str, ...] = ("kiosk-a", "kiosk-b", "kiosk-c")
) -> tuple[dict[str, Any], Path]:
    hosts = kiosk_hosts(list(names))
    if len(names) == 1:
        inventory = write_inventory(tmp_path / "inventory.yml", {"studio_one": hosts})
        return hosts, inventory
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
    new = wheelhouse(tmp_path, "0.2.0")
    result = ansible("update.yml", inventory, kiosk_wheelhouse=str(new), **FAST)
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
    new = wheelhouse(tmp_path, "0.2.0")
    result = ansible(
        "update.yml", inventory, kiosk_wheelhouse=str(new), kiosk_health_retries=2, **FAST
    )
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
    new = wheelhouse(tmp_path, "0.2.0")
    result = ansible("update.yml", inventory, kiosk_wheelhouse=str(new), **FAST)
    assert result.returncode == 0, result.stdout
    assert [pi.current() for pi in hosts.values()] == ["0.2.0"] * 3
    # Each kiosk installed offline from its copy of the whole wheelhouse (the fake pip
    # wants a wheel for every locked project), and the copy is gone afterwards.
    for pi in hosts.values():
        assert installed_offline_from_staged_wheelhouse(pi), pip_installs(pi)
        assert list(pi.state.glob("kiosk-update.*")) == []
    # One host at a time: a's health gate ran before b started its update, b's before c's.
    timeline = (tmp_path / "timeline").read_text().split()[::2]
    assert timeline[0] == "kiosk-a" and timeline == sorted(timeline)
    actions = (tmp_path / "timeline").read_text().splitlines()
    for name in hosts:
        mine = [line.split()[1] for line in actions if line.startswith(name + " ")]
        assert mine[0] == "install" and mine[-1] == "status", mine
    assert "kiosk-a: updated, runs 0.2.0" in result.stdout
    assert "kiosk-c: updated, runs 0.2.0" in result.stdout
    # Run again, the wheelhouse given relative to fleet/: nothing to install, the health
    # gate still runs.
    relative = os.path.relpath(new, FLEET)
    again = ansible("update.yml", inventory, kiosk_wheelhouse=relative, **FAST)
    assert again.returncode == 0, again.stdout
    assert "kiosk-b: already current, runs 0.2.0" in again.stdout
    assert all(len(pip_installs(pi)) == 1 for pi in hosts.values())


def test_single_wheel_is_installed_with_dependencies_from_the_index(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path
) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path, ("kiosk-a",))
    result = ansible("update.yml", inventory, kiosk_wheel=str(wheel(tmp_path, "0.2.0")), **FAST)
    assert result.returncode == 0, result.stdout
    pi = hosts["kiosk-a"]
    assert (pi.current(), pi.previous()) == ("0.2.0", "0.1.0")
    assert "pip-from-index smartum_kiosk-0.2.0-py3-none-any.whl" in pi.calls()
    assert not any(" --no-index " in line for line in pip_installs(pi))
    assert "kiosk-a: updated, runs 0.2.0" in result.stdout


@pytest.mark.parametrize(
    ("given", "got"),
    [({}, "neither"), ({"kiosk_wheelhouse": "HOUSE", "kiosk_wheel": "WHEEL"}, "both")],
)
def test_release_must_be_given_exactly_once(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, given: dict[str, str], got: str
) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path, ("kiosk-a",))
    paths = {"HOUSE": str(wheelhouse(tmp_path, "0.2.0")), "WHEEL": str(wheel(tmp_path, "0.2.0"))}
    result = ansible("update.yml", inventory, **{k: paths[v] for k, v in given.items()}, **FAST)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "give exactly one of -e kiosk_wheelhouse=DIR" in out and f"got {got}" in out
    assert hosts["kiosk-a"].calls() == [] and hosts["kiosk-a"].current() == "0.1.0"


def two_kiosk_wheels(house: Path) -> None:
    wheel(house, "0.3.0")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda house: house.rename(house.with_name("gone")), "wheels-0.2.0: no such folder"),
        (lambda house: (house / "requirements.lock").unlink(), "no requirements.lock there"),
        (two_kiosk_wheels, "expected one smartum_kiosk wheel, found smartum_kiosk-0.2.0-py3-"
                           "none-any.whl, smartum_kiosk-0.3.0-py3-none-any.whl"),
        (lambda house: next(house.glob("smartum_kiosk-*")).rename(
            house / "smartum_kiosk-new-py3-none-any.whl"), "is not a smartum_kiosk-VERSION"),
    ],
    ids=["missing", "no-lock", "two-wheels", "no-version"],
)  # fmt: skip
def test_bad_wheelhouse_is_refused_before_any_kiosk_is_touched(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, spoil: Any, message: str
) -> None:
    hosts, inventory = setup(kiosk_hosts, tmp_path, ("kiosk-a",))
    house = wheelhouse(tmp_path, "0.2.0")
    spoil(house)
    result = ansible("update.yml", inventory, kiosk_wheelhouse=str(house), **FAST)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split())
    assert hosts["kiosk-a"].calls() == [] and hosts["kiosk-a"].current() == "0.1.0"
