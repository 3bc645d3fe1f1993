"""Fixtures of the fleet tests (helpers in fleet_hosts.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fleet_hosts import BIN, FLEET, FakePi, install_kiosks


@pytest.fixture
def ansible(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    home = tmp_path / "ansible-home"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(FLEET / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{BIN}:{os.environ['PATH']}",
    )

    def run(playbook: str, inventory: Path, **extra: Any) -> subprocess.CompletedProcess[str]:
        vars_file = tmp_path / "extra-vars.json"
        vars_file.write_text(json.dumps(extra))
        argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(FLEET / playbook),
                "-e", f"@{vars_file}"]  # fmt: skip
        result = subprocess.run(
            argv,
            cwd=FLEET,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        print(result.stdout[-20000:], result.stderr[-5000:])  # shown when a test fails
        return result

    return run


@pytest.fixture
def kiosk_hosts(tmp_path: Path) -> Callable[[list[str]], dict[str, FakePi]]:
    def make(names: list[str]) -> dict[str, FakePi]:
        return install_kiosks(tmp_path, names)

    return make
