"""Kiosk hosts for the fleet playbooks, run for real by ansible-playbook on this machine.

Fixtures (conftest.py):

- ``ansible(playbook, inventory, **extra_vars) -> CompletedProcess``: ansible-playbook
  with fleet/ansible.cfg, its state kept in the test's tmp folder.
- ``kiosk_hosts(names) -> {name: FakePi}``: one kiosk per name, each a root folder with
  release 0.1.0 installed from a wheelhouse by the real scripts/update-remote.sh
  (tests/scripts/fake_pi.py: fake systemctl, venvs and runuser), and a stand-in
  ``kiosk status --json`` that reports the running release, online, and quarantined
  requests for a release listed in ``<state>/quarantines``. ``write_inventory(hosts)``
  makes the inventory: every host uses ``ansible_connection=local``, with its root folder
  passed in ``kiosk_environment``; every kiosk notes "NAME install" and "NAME status" in
  one ``timeline`` file beside it.

Releases: ``wheelhouse(folder, version)`` makes a locked wheelhouse as
scripts/wheelhouse.sh does (kiosk_wheelhouse); ``wheel(folder, version)`` one kiosk
wheel (kiosk_wheel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "fleet"
REMOTE = ROOT / "scripts" / "update-remote.sh"
sys.path.insert(0, str(ROOT / "tests" / "scripts"))

from fake_pi import FakePi, have_sysusers  # noqa: E402

BIN = Path(sys.executable).parent

STATUS = r"""#!/bin/bash
# stand-in for `kiosk status --json`: the running release, online, quarantined on request
[[ $1 == status && $2 == --json ]] || { echo "stand-in kiosk: unexpected $*" >&2; exit 9; }
echo "kiosk status $*" >>"$FAKE_STATE/calls"
echo "$(basename "$(dirname "$KIOSK_ROOT")") status" >>"$FLEET_TIMELINE"
current=$(readlink "$KIOSK_ROOT/opt/kiosk/current")
quarantined=0
if grep -qxF "$current" "$FAKE_STATE/quarantines" 2>/dev/null; then quarantined=1; fi
printf '{"version": "%s", "online": true, "pending": 0, "quarantined": %d}\n' \
    "$current" "$quarantined"
"""

PYTHON_LOGGED = r"""#!/bin/bash
# the fake python3, noting in the shared timeline that this kiosk starts installing
echo "$(basename "$(dirname "$KIOSK_ROOT")") install" >>"$FLEET_TIMELINE"
exec "$(dirname "$0")/python3" "$@"
"""

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not have_sysusers(),
    reason="update-remote.sh installs files as root into a test root (systemd-sysusers)",
)


def wheel(folder: Path, version: str) -> Path:
    path = folder / f"smartum_kiosk-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("kiosk/__init__.py", f'__version__ = "{version}"\n')
    return path


def wheelhouse(folder: Path, version: str) -> Path:
    """What scripts/wheelhouse.sh makes, in ``folder/wheels-VERSION``: the kiosk wheel, a
    dependency's wheel, and requirements.lock (``name==version --hash=sha256:...``)."""
    house = folder / f"wheels-{version}"
    house.mkdir()
    kiosk = wheel(house, version)
    dep = house / "pyserial-3.5-py2.py3-none-any.whl"
    with zipfile.ZipFile(dep, "w") as z:
        z.writestr("serial/__init__.py", "")
    lines = [
        "# Locked wheelhouse made by scripts/wheelhouse.sh; install with",
        "# pip install --no-index --find-links . --require-hashes -r requirements.lock",
    ]
    for path, name in ((dep, "pyserial==3.5"), (kiosk, f"smartum-kiosk=={version}")):
        lines.append(f"{name} --hash=sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}")
    (house / "requirements.lock").write_text("\n".join(lines) + "\n")
    return house


def write_inventory(path: Path, groups: dict[str, dict[str, FakePi]], **host_vars: Any) -> Path:
    """An inventory with the kiosks of *groups* (group name -> hosts) under ``kiosks``."""
    children: dict[str, Any] = {}
    for group, hosts in groups.items():
        children[group] = {"hosts": {}}
        for name, pi in hosts.items():
            children[group]["hosts"][name] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "kiosk_become": False,
                "kiosk_opt": str(pi.opt),
                "kiosk_bin": str(pi.bin / "kiosk-status"),
                "kiosk_config_path": str(pi.root / "etc/kiosk/kiosk.toml"),
                "kiosk_remote_tmp": str(pi.state),
                "kiosk_environment": {
                    "PATH": f"{pi.bin}:{os.environ['PATH']}",
                    "KIOSK_ROOT": str(pi.root),
                    "FAKE_STATE": str(pi.state),
                    "PYTHON": str(pi.bin / "python3-logged"),
                    "FLEET_TIMELINE": str(path.parent / "timeline"),
                },
                **host_vars,
            }
    inventory = {"all": {"children": {"kiosks": {"children": children}}}}
    path.write_text(json.dumps(inventory, indent=1))
    return path


KIOSK = BIN / "kiosk"


def kiosk_toml(
    path: Path, backend: Any, client: tuple[str, str], device: str, extra: str = ""
) -> Path:
    """A kiosk.toml for *backend* with its secret and journal beside it."""
    from refbackend import DEMO_VENUE

    secret = path.parent / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    path.write_text(
        f'[device]\nid = "{device}"\nvenue = "{DEMO_VENUE}"\n\n'
        f'[backend]\nurl = "{backend.url}"\nclient_id = "{client[0]}"\n'
        f'client_secret_file = "{secret}"\nissuer = "{backend.issuer}"\n'
        f"connect_timeout = 0.5\nread_timeout = 2.0\n\n"
        f'[journal]\npath = "{path.parent / "journal.db"}"\nmin_free_mb = 0\n\n'
        '[metrics]\ntextfile = ""\n\n'
        f'[display]\ndriver = "none"\n{extra}'
    )
    return path


def install_kiosks(folder: Path, names: list[str]) -> dict[str, FakePi]:
    """One kiosk per name under *folder*, release 0.1.0 installed by the real
    update-remote.sh, with the stand-in ``kiosk status`` and the logged python3."""
    units = folder / "units-0.1.0"
    units.mkdir(exist_ok=True)
    shutil.copy(ROOT / "systemd" / "kiosk.sysusers", units)
    (units / "kiosk.service").write_text("[Service]\n# release 0.1.0\n")
    first = wheelhouse(folder, "0.1.0")
    hosts = {}
    for name in names:
        pi = FakePi(folder / name)
        (pi.root / "etc/kiosk").mkdir(parents=True, exist_ok=True)
        (pi.root / "etc/kiosk/kiosk.toml").write_text('[device]\nid = "counter-1"\n')
        argv = ["bash", str(REMOTE), "--first-install", "--wheelhouse", str(first),
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
