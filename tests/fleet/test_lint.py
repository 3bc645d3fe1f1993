"""The fleet project passes ansible-lint (production profile) and the playbooks' syntax check."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from fleet_hosts import BIN, FLEET

PLAYBOOKS = sorted(
    p.name for p in FLEET.glob("*.yml") if not p.name.startswith(("inventory", "alerts"))
)


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(FLEET / "ansible.cfg"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-home" / "tmp"),
        PATH=f"{BIN}:{os.environ['PATH']}",
        NO_COLOR="1",
    )
    return subprocess.run(
        argv,
        cwd=FLEET,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_playbooks_are_there() -> None:
    assert PLAYBOOKS == ["config.yml", "status.yml", "update.yml"]


def test_ansible_lint(tmp_path: Path) -> None:
    result = run([str(BIN / "ansible-lint"), "--offline", "--nocolor"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stderr + result.stdout


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook: str, tmp_path: Path) -> None:
    argv = [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.example.yml",
            playbook]  # fmt: skip
    result = run(argv, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"playbook: {playbook}" in result.stdout


def test_example_inventory_groups_kiosks_by_city_and_studio(tmp_path: Path) -> None:
    argv = [str(BIN / "ansible-inventory"), "-i", "inventory.example.yml", "--list"]
    result = run(argv, tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kiosks"]["children"] == ["helsinki", "tampere"]
    assert "helsinki_kallio" in doc["helsinki"]["children"]
    studios = [g for g in doc if g.startswith(("helsinki_", "tampere_"))]
    hosts = {h for g in studios for h in doc[g]["hosts"]}
    assert len(hosts) == 4 and all(h in doc["_meta"]["hostvars"] for h in hosts)


def test_the_roles_are_for_what_the_card_runs_raspberry_pi_os_trixie() -> None:
    # The card is Raspberry Pi OS trixie 64-bit (CPython 3.13, aarch64); flash.sh
    # refuses bookworm, so no kiosk the fleet reaches runs it.
    for meta in sorted(FLEET.glob("roles/*/meta/main.yml")):
        platforms = yaml.safe_load(meta.read_text())["galaxy_info"]["platforms"]
        assert platforms == [{"name": "Debian", "versions": ["trixie"]}], meta
    for path in sorted(FLEET.rglob("*.yml")):
        text = path.read_text()
        assert "bookworm" not in text and "cp311" not in text, path
