"""First boot on stock Raspberry Pi OS Lite with no network: numpy from the card's
wheelhouse when the system has none, and the network-only Debian packages left to
kiosk-packages (scripts/kiosk-packages.sh) with its retry timer."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from fake_pi import FakePi, have_sysusers
from test_flash import MT_ENV, OFFSET, ROOT, run
from test_flash import flashed as flashed  # the flash tests' fixtures
from test_flash import inputs as inputs

KIOSK_PACKAGES = ROOT / "scripts" / "kiosk-packages.sh"

needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not have_sysusers(), reason="first boot chowns files: needs root"
)


def boot_dir(flashed: Path, tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir()
    run(["mcopy", "-s", "-i", f"{flashed}@@{OFFSET}", "::kiosk", str(boot)], env=MT_ENV, check=True)
    return boot


def add_numpy_wheel(wheels: Path) -> str:
    wheel = wheels / "numpy-2.4.6-cp313-cp313-manylinux_2_27_aarch64.whl"
    wheel.write_bytes(b"PK numpy")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with (wheels / "requirements.lock").open("a") as f:
        f.write(f"numpy==2.4.6 --hash=sha256:{digest}\n")
    return digest


@needs_root_tools
def test_without_system_numpy_the_wheelhouse_numpy_is_installed(flashed, tmp_path):
    boot = boot_dir(flashed, tmp_path)
    digest = add_numpy_wheel(boot / "kiosk/wheels")
    pi = FakePi(tmp_path / "pi")
    (pi.state / "no-system-numpy").touch()
    env = dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_SETTLE="0", KIOSK_APT="0")
    result = run(["bash", str(boot / "kiosk/firstboot.sh")], env=env)
    assert result.returncode == 0, result.stderr
    assert "numpy from the wheelhouse: the system has none" in result.stderr
    assert pi.current() == "0.2.0"
    release = pi.opt / "0.2.0"
    assert (release / "constraints.txt").read_text() == ""
    assert f"numpy==2.4.6 --hash=sha256:{digest}" in (release / "requirements.txt").read_text()


@needs_root_tools
def test_a_system_numpy_is_kept_and_the_wheel_left_out(flashed, tmp_path):
    boot = boot_dir(flashed, tmp_path)
    add_numpy_wheel(boot / "kiosk/wheels")
    pi = FakePi(tmp_path / "pi")
    env = dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_SETTLE="0", KIOSK_APT="0")
    result = run(["bash", str(boot / "kiosk/firstboot.sh")], env=env)
    assert result.returncode == 0, result.stderr
    assert "numpy 1.24.2 from the system" in result.stderr
    release = pi.opt / "0.2.0"
    assert (release / "constraints.txt").read_text() == "numpy==1.24.2\n"
    assert "numpy==" not in (release / "requirements.txt").read_text()


@needs_root_tools
def test_no_numpy_anywhere_fails_first_boot_saying_what_to_do(flashed, tmp_path):
    boot = boot_dir(flashed, tmp_path)  # the test wheelhouse has no numpy wheel
    pi = FakePi(tmp_path / "pi")
    (pi.state / "no-system-numpy").touch()
    env = dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_SETTLE="0", KIOSK_APT="0")
    result = run(["bash", str(boot / "kiosk/firstboot.sh")], env=env)
    assert result.returncode != 0
    assert "the wheelhouse has no numpy and the system none" in result.stderr
    assert not (boot / "kiosk/client_secret").exists()


# --- kiosk-packages ------------------------------------------------------------------

FAKE = r"""#!/bin/bash
name=$(basename "$0")
echo "$name $*" >>"$FAKE_STATE/calls"
case $name in
  ip) [[ -e $FAKE_STATE/route ]] && echo "default via 10.0.0.1 dev eth0"; exit 0 ;;
  timedatectl) cat "$FAKE_STATE/synced" 2>/dev/null || echo no ;;
  dpkg-query) grep -qx "${!#}" "$FAKE_STATE/installed" 2>/dev/null && printf 'ii ' ; exit 0 ;;
  apt-cache) [[ ${!#} != python3-unknown ]]; exit ;;
  apt-get)
    [[ $* == *" update"* ]] && exit 0
    [[ -e $FAKE_STATE/apt-fails ]] && exit 100
    echo "${!#}" >>"$FAKE_STATE/installed" ;;
esac
exit 0
"""


class Packages:
    def __init__(self, tmp_path: Path, pending: list[str]) -> None:
        self.root, self.state, bin_dir = tmp_path / "root", tmp_path / "state", tmp_path / "bin"
        for d in (self.root / "var/lib/kiosk-packages", self.state, bin_dir):
            d.mkdir(parents=True)
        self.pending = self.root / "var/lib/kiosk-packages/pending"
        self.pending.write_text("".join(p + "\n" for p in pending))
        for name in ("ip", "timedatectl", "dpkg-query", "apt-cache", "apt-get", "systemctl"):
            (bin_dir / name).write_text(FAKE)
            (bin_dir / name).chmod(0o755)
        self.env = dict(
            os.environ,
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            KIOSK_ROOT=str(self.root),
            FAKE_STATE=str(self.state),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["bash", str(KIOSK_PACKAGES), *args], env=self.env)

    def calls(self) -> list[str]:
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []


def test_without_a_route_the_packages_stay_pending_for_the_timer(tmp_path):
    pk = Packages(tmp_path, ["python3-picamera2"])
    result = pk.run("--wait", "0")
    assert result.returncode == 75, result.stderr
    assert "no network after 0 s: python3-picamera2 still to install" in result.stderr
    assert pk.pending.read_text() == "python3-picamera2\n"
    assert not any(c.startswith("apt-get") for c in pk.calls())


def test_with_a_route_apt_installs_ignoring_dates_until_the_clock_syncs(tmp_path):
    pk = Packages(tmp_path, ["python3-picamera2", "python3-lgpio"])
    (pk.state / "route").touch()
    result = pk.run("--wait", "0")
    assert result.returncode == 0, result.stderr
    assert not pk.pending.exists()
    apt = [c for c in pk.calls() if c.startswith("apt-get")]
    assert apt[0].endswith(" update")
    assert all("Acquire::Check-Date=false" in c and "DPkg::Lock::Timeout=300" in c for c in apt)
    assert [c.split()[-1] for c in apt[1:]] == ["python3-picamera2", "python3-lgpio"]
    assert "systemctl disable --now kiosk-packages.timer" in pk.calls()
    assert "systemctl try-restart kiosk.service" in pk.calls()  # the camera can open now


def test_a_synchronised_clock_keeps_apts_date_check(tmp_path):
    pk = Packages(tmp_path, ["python3-picamera2"])
    (pk.state / "route").touch()
    (pk.state / "synced").write_text("yes\n")
    assert pk.run("--wait", "0").returncode == 0
    assert not any("Check-Date" in c for c in pk.calls())


def test_what_apt_cannot_install_stays_pending(tmp_path):
    pk = Packages(tmp_path, ["python3-unknown", "python3-lgpio"])
    (pk.state / "route").touch()
    result = pk.run("--wait", "0")
    assert result.returncode == 75
    assert pk.pending.read_text() == "python3-unknown\n"
    assert "NOT INSTALLED yet: python3-unknown" in result.stderr
    assert "systemctl disable --now kiosk-packages.timer" not in pk.calls()


def test_nothing_pending_disables_the_timer(tmp_path):
    pk = Packages(tmp_path, ["python3-lgpio"])
    (pk.state / "installed").write_text("python3-lgpio\n")
    assert pk.run().returncode == 0
    assert not pk.pending.exists()
    assert "systemctl disable --now kiosk-packages.timer" in pk.calls()
    assert not any(c.startswith("apt-get") for c in pk.calls())
