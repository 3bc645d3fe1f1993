"""Fixtures of the fleet tests (helpers in fleet_hosts.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fleet_hosts import BIN, FLEET, PYTHON_LOGGED, REMOTE, ROOT, STATUS, FakePi, wheel


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
            argv, cwd=FLEET, env=env, capture_output=True, text=True, timeout=600
        )
        print(result.stdout[-20000:], result.stderr[-5000:])  # shown when a test fails
        return result

    return run


@pytest.fixture
def kiosk_hosts(tmp_path: Path) -> Callable[[list[str]], dict[str, FakePi]]:
    def make(names: list[str]) -> dict[str, FakePi]:
        units = tmp_path / "units-0.1.0"
        units.mkdir(exist_ok=True)
        shutil.copy(ROOT / "systemd" / "kiosk.sysusers", units)
        (units / "kiosk.service").write_text("[Service]\n# release 0.1.0\n")
        first = wheel(tmp_path, "0.1.0")
        hosts = {}
        for name in names:
            pi = FakePi(tmp_path / name)
            (pi.root / "etc/kiosk").mkdir(parents=True, exist_ok=True)
            (pi.root / "etc/kiosk/kiosk.toml").write_text('[device]\nid = "counter-1"\n')
            argv = ["bash", str(REMOTE), "--first-install", "--wheel", str(first),
                    "--units", str(units), "--settle", "0"]  # fmt: skip
            result = subprocess.run(argv, env=pi.env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            assert pi.current() == "0.1.0" and pi.unit_state() == "active"
            (pi.state / "calls").unlink()
            for script, text in (("kiosk-status", STATUS), ("python3-logged", PYTHON_LOGGED)):
                (pi.bin / script).write_text(text)
                (pi.bin / script).chmod(0o755)
            hosts[name] = pi
        return hosts

    return make
