"""scripts/flash.sh --metrics / --log-server and the fleet part of first boot.

Images are built as in test_flash.py and read back with mtools; user-data is checked
with ``cloud-init schema``. scripts/fleet-firstboot.sh runs against a root directory;
only the commands that would change this machine (apt-get, systemctl,
dpkg-statoverride) are replaced by stand-ins that note their calls. ``ip`` is the real
one: the default listen address is this machine's LAN address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_flash import MT_ENV, OFFSET, ROOT, Inputs, mfiles, mtype, run
from test_flash import inputs as inputs  # the flash tests' fixture

FLEET_FIRSTBOOT = ROOT / "scripts" / "fleet-firstboot.sh"
LOG_URL = "https://logs.example.net:19532"


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path
    other_key: Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_key_and_csr(folder: Path, name: str) -> tuple[Path, Path]:
    key, csr = folder / f"{name}.key", folder / f"{name}.csr"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")  # fmt: skip
    key.chmod(0o600)
    return key, csr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required to make test certificates")
    d = tmp_path_factory.mktemp("log-certs")
    ca_key, _ = make_key_and_csr(d, "ca-req")
    ca = d / "ca.crt"
    openssl("req", "-x509", "-key", str(ca_key), "-out", str(ca), "-days", "2",
            "-subj", "/CN=Studio chain log CA")  # fmt: skip
    key, csr = make_key_and_csr(d, "counter-1")
    cert = d / "counter-1.crt"
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2")  # fmt: skip
    other_key, _ = make_key_and_csr(d, "other")
    return Certs(ca, cert, key, other_key)


def fleet_args(certs: Certs, *, listen: str | None = "10.10.1.21:9100") -> list[str]:
    argv = ["--metrics"]
    if listen is not None:
        argv += ["--metrics-listen", listen]
    argv += ["--log-server", LOG_URL, "--log-ca", str(certs.ca),
             "--log-cert", str(certs.cert), "--log-key", str(certs.key)]  # fmt: skip
    return argv


def prefetched_debs(base: Path) -> Path:
    """The fleet packages' .deb files as _flash_debs.sh leaves them (no network here)."""
    for pkg in ("prometheus-node-exporter", "systemd-journal-remote"):
        d = base / pkg
        d.mkdir(parents=True, exist_ok=True)
        deb = d / f"{pkg}_1.0_arm64.deb"
        deb.write_bytes(b"!<arch>\n" + pkg.encode())
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        (d / "SHA256SUMS").write_text(f"{digest}  {deb.name}\n")
    return base


def flash(inputs: Inputs, out: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    debs = prefetched_debs(Path(tempfile.gettempdir()) / f"kiosk-card-debs-{os.getpid()}")
    env = dict(os.environ, KIOSK_CARD_DEBS=str(debs))
    return run([*inputs.args(out, **{"--image": str(inputs.image)}), *extra], env=env)


@pytest.fixture(scope="module")
def fleet_flashed(
    inputs: Inputs,
    certs: Certs,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("fleet-out") / "kiosk.img"
    result = flash(inputs, out, fleet_args(certs))
    assert result.returncode == 0, result.stderr
    return out


def test_fleet_pieces_on_the_boot_partition(fleet_flashed: Path, certs: Certs) -> None:
    assert {"fleet-firstboot.sh", "fleet.conf", "log", "firstboot.sh", "client_secret"} <= (
        mfiles(fleet_flashed, "kiosk")
    )
    assert mfiles(fleet_flashed, "kiosk/log") == {"ca.crt", "client.crt", "client.key"}
    assert mtype(fleet_flashed, "kiosk/log/ca.crt") == certs.ca.read_text()
    assert mtype(fleet_flashed, "kiosk/log/client.crt") == certs.cert.read_text()
    assert mtype(fleet_flashed, "kiosk/log/client.key") == certs.key.read_text()
    assert mtype(fleet_flashed, "kiosk/fleet-firstboot.sh") == FLEET_FIRSTBOOT.read_text()
    # Stock Raspberry Pi OS Lite has neither package: their .deb files come on the card.
    for pkg in ("prometheus-node-exporter", "systemd-journal-remote"):
        assert mfiles(fleet_flashed, f"kiosk/debs/{pkg}") == {f"{pkg}_1.0_arm64.deb", "SHA256SUMS"}
    conf = mtype(fleet_flashed, "kiosk/fleet.conf").splitlines()
    assert [line for line in conf if not line.startswith("#")] == [
        "metrics=1",
        "metrics_listen=10.10.1.21:9100",
        f"log_server={LOG_URL}",
    ]


def test_user_data_runs_the_fleet_step_after_the_kiosk_install(fleet_flashed: Path) -> None:
    data = yaml.safe_load(mtype(fleet_flashed, "user-data"))
    runcmd = data["runcmd"]
    steps = [" ".join(step) for step in runcmd]
    install = next(i for i, s in enumerate(steps) if "bash /boot/firmware/kiosk/firstboot.sh" in s)
    fleet = next(i for i, s in enumerate(steps) if "kiosk/fleet-firstboot.sh ||" in s)
    assert install < fleet  # the kiosk account exists when node_exporter's folder is opened
    assert [
        "rm", "-f", "/boot/firmware/kiosk/client_secret", "/boot/firmware/network-config"
    ] in runcmd  # fmt: skip
    # The certificates go even if fleet-firstboot.sh never ran.
    assert runcmd[fleet + 1] == ["rm", "-rf", "/boot/firmware/kiosk/log"]
    # Then the check that ends cloud-init in error if a step failed.
    assert runcmd[-1][:2] == ["sh", "-c"] and "/run/kiosk-firstboot.failed" in runcmd[-1][2]
    # The rest of user-data is as without the fleet options.
    assert data["hostname"] == "counter-1"
    assert data["final_message"].startswith("cloud-init finished")


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init is not installed")
def test_fleet_user_data_passes_cloud_init_schema(fleet_flashed: Path, tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_text(mtype(fleet_flashed, "user-data"))
    result = run(["cloud-init", "schema", "--config-file", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_without_fleet_options_nothing_fleet_is_written(
    inputs: Inputs,
    tmp_path: Path,
) -> None:
    out = tmp_path / "plain.img"
    assert flash(inputs, out, []).returncode == 0
    assert not {"fleet-firstboot.sh", "fleet.conf", "log"} & mfiles(out, "kiosk")
    assert "fleet" not in mtype(out, "user-data")


def test_metrics_only_needs_no_certificates(
    inputs: Inputs,
    tmp_path: Path,
) -> None:
    out = tmp_path / "metrics.img"
    result = flash(inputs, out, ["--metrics"])
    assert result.returncode == 0, result.stderr
    assert "log" not in mfiles(out, "kiosk")
    conf = mtype(out, "kiosk/fleet.conf")
    assert "metrics=1\n" in conf and "metrics_listen=\n" in conf and "log_server=\n" in conf


def test_bad_fleet_arguments_each_give_their_message_and_exit_2(
    inputs: Inputs,
    certs: Certs,
    tmp_path: Path,
) -> None:
    open_key = tmp_path / "open.key"
    open_key.write_text(certs.key.read_text())
    open_key.chmod(0o644)
    ca, cert, key = str(certs.ca), str(certs.cert), str(certs.key)
    cases = [
        (["--metrics-listen", "10.0.0.1:9100"], "--metrics-listen needs --metrics"),
        (["--metrics", "--metrics-listen", "10.0.0.256:9100"], "expected ADDRESS:PORT"),
        (["--metrics", "--metrics-listen", "10.0.0.1"], "expected ADDRESS:PORT"),
        (["--metrics", "--metrics-listen", "kiosk.lan:9100"], "expected ADDRESS:PORT"),
        (["--metrics", "--metrics-listen", "10.0.0.1:70000"], "expected ADDRESS:PORT"),
        (["--log-server", "http://logs:19532", "--log-ca", ca], "expected https://HOST[:PORT]"),
        (["--log-server", LOG_URL], "--log-ca is required with --log-server"),
        (["--log-ca", ca], "need --log-server"),
        (["--log-server", LOG_URL, "--log-ca", key], "--log-ca " + key + ": not a PEM"),
        (["--log-server", LOG_URL, "--log-ca", str(tmp_path / "no.crt")], "no such file"),
        (["--log-server", LOG_URL, "--log-ca", ca, "--log-cert", cert], "give both --log-cert"),
        (["--log-server", LOG_URL, "--log-ca", ca, "--log-cert", cert, "--log-key", str(open_key)],
         "readable by others"),
        (["--log-server", LOG_URL, "--log-ca", ca, "--log-cert", cert,
          "--log-key", str(certs.other_key)], "does not belong to --log-cert"),
        (["--metrics-listen"], "--metrics-listen needs a value"),
    ]  # fmt: skip
    out = tmp_path / "k.img"
    failures = []
    for extra, message in cases:
        result = flash(inputs, out, extra)
        if result.returncode != 2 or message not in result.stderr:
            failures.append((extra, result.returncode, result.stderr))
    assert failures == []
    assert not out.exists()


def test_dry_run_tells_the_fleet_steps(
    inputs: Inputs,
    certs: Certs,
    tmp_path: Path,
) -> None:
    result = flash(inputs, tmp_path / "k.img", [*fleet_args(certs), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "prometheus-node-exporter on first boot, listening on 10.10.1.21:9100" in result.stderr
    assert f"systemd-journal-upload to {LOG_URL}" in result.stderr
    assert "fleet-firstboot.sh" in result.stderr  # the user-data shown
    assert list(tmp_path.iterdir()) == []


def test_shellcheck_is_clean_for_the_fleet_scripts() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is required (apt-get install shellcheck)")
    scripts = [ROOT / "scripts" / s for s in ("flash.sh", "_flash_fleet.sh", "fleet-firstboot.sh")]
    result = run(["shellcheck", "-x", *map(str, scripts)], cwd=ROOT)
    assert result.returncode == 0, result.stdout


# --- first boot, fleet part ---------------------------------------------------------------

STAND_IN = r"""#!/bin/bash
# stand-in for a command that would change this machine: notes the call
name=$(basename "$0")
echo "$name $*" >>"$FLEET_CALLS"
case $name in
  apt-get)
    [[ $* == *prometheus-node-exporter* && -f $KIOSK_ROOT/etc/default/prometheus-node-exporter ]] &&
        echo "apt-get saw /etc/default/prometheus-node-exporter" >>"$FLEET_CALLS"
    [[ -e $FLEET_STATE/apt-fails ]] && exit 100
    [[ -e $FLEET_STATE/apt-fails-once ]] && { rm "$FLEET_STATE/apt-fails-once"; exit 100; }
    [[ $* == *prometheus-node-exporter* ]] &&
        mkdir -p "$KIOSK_ROOT/var/lib/prometheus/node-exporter"
    ;;
  dpkg-statoverride) [[ $1 == --list ]] && exit 1 ;;
esac
exit 0
"""


@dataclass
class FirstBoot:
    boot: Path
    root: Path
    calls_file: Path
    env: dict[str, str]

    def run(self) -> subprocess.CompletedProcess[str]:
        return run(["bash", str(self.boot / "kiosk/fleet-firstboot.sh")], env=self.env)

    def calls(self) -> list[str]:
        return self.calls_file.read_text().splitlines() if self.calls_file.exists() else []


def first_boot(image: Path, tmp_path: Path) -> FirstBoot:
    boot = tmp_path / "boot"
    boot.mkdir()
    run(["mcopy", "-s", "-i", f"{image}@@{OFFSET}", "::kiosk", str(boot)], env=MT_ENV, check=True)
    root, bin_dir, state = tmp_path / "root", tmp_path / "bin", tmp_path / "state"
    for d in (root, bin_dir, state):
        d.mkdir()
    for name in ("apt-get", "systemctl", "dpkg-statoverride", "journalctl", "systemd-tmpfiles"):
        (bin_dir / name).write_text(STAND_IN)
        (bin_dir / name).chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        KIOSK_ROOT=str(root),
        KIOSK_BOOT_DIR=str(boot),
        FLEET_CALLS=str(state / "calls"),
        FLEET_STATE=str(state),
        KIOSK_NET_WAIT="0",
    )
    return FirstBoot(boot, root, state / "calls", env)


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="first boot chowns files: needs root")


@needs_root
def test_fleet_first_boot_sets_up_node_exporter_and_the_uploader(
    fleet_flashed: Path, certs: Certs, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)
    result = fb.run()
    assert result.returncode == 0, result.stderr
    root = fb.root
    # Certificates: root only, and gone from the boot partition.
    assert not (fb.boot / "kiosk/log").exists()
    assert mode_owner(root / "etc/kiosk/log") == (0o700, 0, 0)
    for name, source in (
        ("ca.crt", certs.ca),
        ("client.crt", certs.cert),
        ("client.key", certs.key),
    ):
        assert (root / "etc/kiosk/log" / name).read_text() == source.read_text()
        assert mode_owner(root / "etc/kiosk/log" / name) == (0o600, 0, 0)
    upload = (root / "etc/systemd/journal-upload.conf.d/kiosk.conf").read_text()
    creds = "/run/credentials/systemd-journal-upload.service"
    assert f"[Upload]\nURL={LOG_URL}\n" in upload
    assert f"TrustedCertificateFile={creds}/ca.crt\n" in upload
    assert f"ServerCertificateFile={creds}/client.crt\n" in upload
    assert f"ServerKeyFile={creds}/client.key\n" in upload
    dropin = (root / "etc/systemd/system/systemd-journal-upload.service.d/kiosk.conf").read_text()
    assert "StartLimitIntervalSec=0" in dropin and "Restart=always" in dropin
    for name in ("ca.crt", "client.crt", "client.key"):
        assert f"LoadCredential={name}:/etc/kiosk/log/{name}\n" in dropin
    assert (root / "var/log/journal").is_dir()  # persistent journal: nothing lost offline
    # node_exporter: on the given address only, configured before the package came.
    default = (root / "etc/default/prometheus-node-exporter").read_text()
    assert (
        'ARGS="--web.listen-address=10.10.1.21:9100'
        ' --collector.textfile.directory=/var/lib/prometheus/node-exporter"'
    ) in default
    ne_dropin = root / "etc/systemd/system/prometheus-node-exporter.service.d/kiosk.conf"
    assert "After=network-online.target" in ne_dropin.read_text()
    calls = fb.calls()
    assert "apt-get saw /etc/default/prometheus-node-exporter" in calls
    assert any(c.startswith("apt-get install") and "--force-confold" in c for c in calls)
    # Offline: apt gets the card's .deb files (checked against SHA256SUMS), never the mirror.
    installs = [c for c in calls if c.startswith("apt-get install")]
    assert len(installs) == 2 and not any("update" in c for c in calls if c.startswith("apt"))
    for pkg in ("prometheus-node-exporter", "systemd-journal-remote"):
        assert any(f"kiosk/debs/{pkg}/{pkg}_1.0_arm64.deb" in c for c in installs)
    assert (
        "dpkg-statoverride --update --add root kiosk 0775 /var/lib/prometheus/node-exporter"
        in calls
    )
    for unit in ("systemd-journal-upload", "prometheus-node-exporter"):
        assert calls.index(f"systemctl enable {unit}") < calls.index(f"systemctl restart {unit}")
    # The kiosk, started before the textfile folder existed, restarts to be able to write it.
    assert calls.index("systemctl try-restart kiosk.service") > calls.index(
        "dpkg-statoverride --update --add root kiosk 0775 /var/lib/prometheus/node-exporter"
    )


def default_route_address() -> str | None:
    """This machine's LAN address as `ip -json` tells it (independent of the script's awk)."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "default"]).stdout or "[]")
    if not routes:
        return None
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show", "dev", routes[0]["dev"]]).stdout)
    globals_ = [a["local"] for i in addrs for a in i["addr_info"] if a.get("scope") == "global"]
    return globals_[0] if globals_ else None


@needs_root
def test_default_listen_address_is_the_lan_address(
    inputs: Inputs,
    tmp_path: Path,
) -> None:
    image = tmp_path / "metrics.img"
    assert flash(inputs, image, ["--metrics"]).returncode == 0
    fb = first_boot(image, tmp_path)
    result = fb.run()
    expected = default_route_address()
    if expected is None:  # no network here: the script refuses to guess
        assert result.returncode == 1
        assert "no default route" in result.stderr
        assert not (fb.root / "etc/default/prometheus-node-exporter").exists()
        return
    assert result.returncode == 0, result.stderr
    ipaddress.IPv4Address(expected)
    default = (fb.root / "etc/default/prometheus-node-exporter").read_text()
    assert f"--web.listen-address={expected}:9100 " in default
    assert "0.0.0.0" not in default and "journal-upload" not in " ".join(fb.calls())


@needs_root
def test_fleet_first_boot_failure_still_removes_the_certificates(
    fleet_flashed: Path, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)
    (Path(fb.env["FLEET_STATE"]) / "apt-fails").touch()
    result = fb.run()
    assert result.returncode == 1
    assert "installing systemd-journal-remote failed" in result.stderr
    assert not (fb.boot / "kiosk/log").exists()
    assert not any(c.startswith("systemctl enable") for c in fb.calls())


NETWORK = r"""#!/bin/bash
# stand-in for ip and timedatectl: a default route and a synchronised clock or not
name=$(basename "$0")
echo "$name $*" >>"$FLEET_CALLS"
case $name in
  ip) [[ -e $FLEET_STATE/route ]] && echo "default via 10.0.0.1 dev eth0" ;;
  timedatectl) cat "$FLEET_STATE/synced" 2>/dev/null || echo no ;;
esac
exit 0
"""
APT_AS_KIOSK_PACKAGES = (  # scripts/kiosk-packages.sh's options
    "-q -o Acquire::Retries=2 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20"
    " -o DPkg::Lock::Timeout=300"
)


def from_the_mirror(fb: FirstBoot, *, route: bool, synced: bool) -> Path:
    """*fb* without the card's .deb files, so apt goes to the mirror; the network and
    the clock as given. Returns the state folder."""
    shutil.rmtree(fb.boot / "kiosk/debs")
    bin_dir = Path(fb.env["PATH"].split(":")[0])
    for name in ("ip", "timedatectl"):
        (bin_dir / name).write_text(NETWORK)
        (bin_dir / name).chmod(0o755)
    state = Path(fb.env["FLEET_STATE"])
    if route:
        (state / "route").touch()
    if synced:
        (state / "synced").write_text("yes\n")
    return state


@needs_root
def test_from_the_mirror_apt_ignores_dates_until_the_clock_syncs_and_bounds_its_waits(
    fleet_flashed: Path, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)
    state = from_the_mirror(fb, route=True, synced=False)
    (state / "apt-fails-once").touch()  # stale package lists: update, then again
    result = fb.run()
    assert result.returncode == 0, result.stderr
    assert "the clock is not synchronised yet: apt ignores the Release files' dates" in (
        result.stderr
    )
    apt = [c for c in fb.calls() if c.startswith("apt-get ") and "saw" not in c]
    assert all(APT_AS_KIOSK_PACKAGES in c and "Acquire::Check-Date=false" in c for c in apt), apt
    installs = [c.split()[-1] for c in apt if c.startswith("apt-get install")]
    # The uploader first (its certificates leave the boot partition first); its first
    # try failed, so apt updated the lists and tried again.
    assert installs == ["systemd-journal-remote", "systemd-journal-remote",
                        "prometheus-node-exporter"]  # fmt: skip
    assert [c.split()[-1] for c in apt if not c.startswith("apt-get install")] == ["update"]
    for pkg in ("prometheus-node-exporter", "systemd-journal-remote"):
        assert f"installing {pkg} from the mirror" in result.stderr


@needs_root
def test_from_the_mirror_a_synchronised_clock_keeps_apts_date_check(
    fleet_flashed: Path, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)
    from_the_mirror(fb, route=True, synced=True)
    result = fb.run()
    assert result.returncode == 0, result.stderr
    apt = [c for c in fb.calls() if c.startswith("apt-get ") and "saw" not in c]
    assert len(apt) == 2 and all(APT_AS_KIOSK_PACKAGES in c for c in apt), apt
    assert not any("Check-Date" in c for c in apt)


@needs_root
def test_without_a_route_apt_is_not_asked_and_the_certificates_still_go(
    fleet_flashed: Path, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)  # KIOSK_NET_WAIT=0: no waiting here
    from_the_mirror(fb, route=False, synced=False)
    result = fb.run()
    assert result.returncode == 1
    assert "no default route after 0 s: cannot fetch" in result.stderr
    assert "run this script again once the network is up" in result.stderr
    assert not any(c.startswith("apt-get") for c in fb.calls())
    assert not (fb.boot / "kiosk/log").exists()


@needs_root
def test_fleet_first_boot_stopped_midway_still_removes_the_certificates(
    fleet_flashed: Path, tmp_path: Path
) -> None:
    fb = first_boot(fleet_flashed, tmp_path)
    (fb.boot / "kiosk/log/client.key").unlink()
    result = fb.run()
    assert result.returncode == 1
    assert "client.key is missing" in result.stderr
    assert not (fb.boot / "kiosk/log").exists()
    assert fb.calls() == []
