"""fleet/config.yml against one local kiosk: the real `kiosk config check` and `kiosk status`.

The kiosk's layout and systemctl are the fake Pi's (conftest.py); `kiosk` is this
project's own command, talking to a reference backend. A stand-in systemctl wrapper
lets the service fail to come back on a file marked ``# breaks-the-service``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_hosts import KIOSK, kiosk_toml, needs_root, write_inventory

from refbackend import ReferenceBackend

pytestmark = needs_root

SYSTEMCTL = r"""#!/bin/bash
# the fake Pi's systemctl, except that a configuration marked to break the service fails
fake=$(dirname "$0")/systemctl.fake
if [[ $1 == restart ]] && grep -q "breaks-the-service" "$KIOSK_CONFIG_FILE"; then
    echo "systemctl $* (fails on this configuration)" >>"$FAKE_STATE/calls"
    echo failed >"$FAKE_STATE/unit"
    exit 1
fi
exec "$fake" "$@"
"""


def setup(kiosk_hosts: Any, tmp_path: Path, refbackend: ReferenceBackend, client: Any) -> Any:
    pi = kiosk_hosts(["kiosk-a"])["kiosk-a"]
    installed = kiosk_toml(pi.root / "etc/kiosk/kiosk.toml", refbackend, client, "counter-1")
    (pi.bin / "systemctl").rename(pi.bin / "systemctl.fake")
    (pi.bin / "systemctl").write_text(SYSTEMCTL)
    (pi.bin / "systemctl").chmod(0o755)
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"studio_one": {"kiosk-a": pi}},
        kiosk_bin=str(KIOSK),
        kiosk_config_group="root",
        kiosk_settle_s=0,
        kiosk_health_retries=2,
        kiosk_health_delay_s=0,
    )
    text = inventory.read_text().replace(
        '"FAKE_STATE"', f'"KIOSK_CONFIG_FILE": "{installed}", "FAKE_STATE"'
    )
    inventory.write_text(text)
    return pi, installed, inventory


def restarts(pi: Any) -> int:
    return sum(1 for line in pi.calls() if line.startswith("systemctl restart"))


def test_config_is_checked_installed_and_the_kiosk_restarted(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, refbackend: ReferenceBackend, demo_client: Any
) -> None:
    pi, installed, inventory = setup(kiosk_hosts, tmp_path, refbackend, demo_client)
    old = installed.read_text()
    new = kiosk_toml(tmp_path / "new.toml", refbackend, demo_client, "counter-2")
    result = ansible("config.yml", inventory, kiosk_config_src=str(new))
    assert result.returncode == 0
    assert installed.read_text() == new.read_text()
    assert Path(f"{installed}.previous").read_text() == old
    assert not Path(f"{installed}.new").exists()
    assert restarts(pi) == 1 and pi.unit_state() == "active"
    # The same file again: nothing to do, no restart.
    again = ansible("config.yml", inventory, kiosk_config_src=str(new))
    assert again.returncode == 0 and restarts(pi) == 1
    assert "changed=0" in again.stdout


def test_rejected_config_changes_nothing(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, refbackend: ReferenceBackend, demo_client: Any
) -> None:
    pi, installed, inventory = setup(kiosk_hosts, tmp_path, refbackend, demo_client)
    old = installed.read_text()
    bad = kiosk_toml(
        tmp_path / "bad.toml", refbackend, demo_client, "counter-2", "\n[offline]\nmax_totl = 5\n"
    )
    result = ansible("config.yml", inventory, kiosk_config_src=str(bad))
    assert result.returncode != 0
    assert "rejected by kiosk config check" in result.stdout
    assert "max_totl" in result.stdout  # the kiosk's own message names the key
    assert installed.read_text() == old and not Path(f"{installed}.new").exists()
    assert restarts(pi) == 0


def test_config_the_service_does_not_survive_is_undone(
    ansible: Any, kiosk_hosts: Any, tmp_path: Path, refbackend: ReferenceBackend, demo_client: Any
) -> None:
    pi, installed, inventory = setup(kiosk_hosts, tmp_path, refbackend, demo_client)
    old = installed.read_text()
    breaking = kiosk_toml(
        tmp_path / "breaking.toml", refbackend, demo_client, "counter-2", "# breaks-the-service\n"
    )
    result = ansible("config.yml", inventory, kiosk_config_src=str(breaking))
    assert result.returncode != 0
    assert installed.read_text() == old
    assert restarts(pi) == 2 and pi.unit_state() == "active"  # back on the old file
    assert "the previous" in result.stdout and "is back in place" in result.stdout
