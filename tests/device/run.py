"""The device test: a card made by scripts/flash.sh boots in QEMU and serves scans.

Run by scripts/device-test.sh (amd64: every step) and scripts/device-test-arm64.sh
(``--arch arm64``: the Pi's architecture under full emulation; first boot, the offline
install from the aarch64 wheelhouse on CPython 3.13, receipts on the serial port, and
the kiosk's memory). Every assertion prints one line:
``PASS|FAIL  <seconds since start>  <name>  (<detail>)``. Exit 0 when all passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet_steps
import modes
from backend import HttpsBackend
from fleet_checks import JournalReceiver
from vm import BACKEND_IP, BOOT_OFFSET, VM

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "device"
# The stand-in's CPython (trixie) for the wheelhouse, besides the Pi's (aarch64-cp311,
# aarch64-cp313, which flash.sh always adds); the scanner's port in the guest.
TARGETS = {"amd64": ["x86_64-cp313"], "arm64": []}
SCANNER_PORT = {"amd64": "/dev/ttyS1", "arm64": "/dev/ttyAMA0"}
# On arm64 the kiosk is a camera kiosk with a serial scanner beside it: with no network
# python3-picamera2 (Raspberry Pi archive) cannot come, and the serial scanner serves.
SOURCES = {"amd64": '"serial"', "arm64": '["camera", "serial"]'}
SECRET_PREFIX = "device-test-secret-"
PSK = "studio-wifi-passphrase-0451"
VENV = ROOT / ".venv" / "bin"


class Report:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.failed: list[str] = []
        self.passed = 0
        self.times: dict[str, float] = {}

    def line(self, ok: bool, name: str, detail: str = "") -> bool:
        t = time.monotonic() - self.start
        print(
            f"{'PASS' if ok else 'FAIL'}  {t:6.1f}s  {name}{f'  ({detail})' if detail else ''}",
            flush=True,
        )
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok

    def info(self, text: str) -> None:
        print(f"      {time.monotonic() - self.start:6.1f}s  {text}", flush=True)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        yield
        self.times[name] = time.monotonic() - t


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build_release(work: Path, version: str, broken: bool = False) -> Path:
    """A kiosk wheel of this source with *version*; *broken*: `kiosk run` cannot start."""
    src = work / f"src-{version}"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", "tests", "bench", "docs"
        ),
    )
    init = src / "kiosk" / "__init__.py"
    init.write_text(
        re.sub(r'__version__ = "[^"]*"', f'__version__ = "{version}"', init.read_text())
    )
    if broken:
        cmd = src / "kiosk" / "cli" / "run_cmd.py"
        text = cmd.read_text()
        head = "def run(args: argparse.Namespace) -> int:\n"
        assert head in text, "kiosk/cli/run_cmd.py has no run(args)"
        cmd.write_text(text.replace(head, head + '    raise SystemExit("release cannot start")\n'))
    out = work / f"dist-{version}"
    r = run(
        [
            str(VENV / "python"),
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            str(src),
            "-w",
            str(out),
        ]
    )
    if r.returncode != 0:
        raise RuntimeError(f"building {version} failed: {r.stderr[-2000:]}")
    (wheel,) = out.glob("smartum_kiosk-*.whl")
    return wheel


def wheelhouse(work: Path, wheel: Path) -> Path:
    out = work / f"wheels-{wheel.name.split('-')[1]}"
    r = run(
        [
            "bash",
            str(ROOT / "scripts/wheelhouse.sh"),
            "--wheel",
            str(wheel),
            "--out",
            str(out),
            "--target",
            TARGETS["amd64"][0],
        ],
        env=dict(os.environ, PYTHON=str(VENV / "python")),
    )
    if r.returncode != 0:
        raise RuntimeError(f"wheelhouse failed: {r.stderr[-2000:]}")
    return out


def kiosk_toml(client_id: str, port: str = "/dev/ttyS1", sources: str = '"serial"') -> str:
    return f"""\
[device]
id = "counter-vm"
venue = "ven_demo0000000000"

[backend]
url = "https://{BACKEND_IP}"
client_id = "{client_id}"
client_secret_file = "/etc/kiosk/client_secret"
issuer = "urn:smartum-kiosk:reference-backend"
ca_bundle = "/etc/kiosk/ca_bundle.pem"
# The emulated guest (TCG) is several times slower than a Pi at a TLS handshake.
connect_timeout = 6.0
read_timeout = 10.0

[scanner]
source = {sources}
port = "{port}"
baud = 115200

[display]
driver = "none"

[signals]
led_pin = -1
buzzer_pin = -1
button_up = -1
button_down = -1
button_ok = -1
"""


class DeviceTest:
    def __init__(
        self, work: Path, report: Report, arch: str = "amd64", figures_out: Path | None = None
    ) -> None:
        self.arch = arch
        self.work = work
        self.r = report
        self.backend = HttpsBackend(VENV / "kiosk", work, BACKEND_IP)
        self.vm: VM
        self.receiver: JournalReceiver | None = None
        self.secret = ""
        self.version = ""
        self.figures_out = figures_out  # where memory-modes writes its figures (--figures)

    # --- helpers --------------------------------------------------------------------

    def check_receipts(self, name: str, amounts: list[int], gap: float = 1.5) -> bool:
        """Scan fresh receipts; each must be checked exactly once at the backend."""
        txs = []
        for cents in amounts:
            tx, token = self.backend.mint_receipt(cents)
            txs.append(tx)
            self.vm.scan(token)
            time.sleep(gap)
        by_tx = self.backend.checked(set(txs), timeout=90)
        bad = [
            f"{tx}: {by_tx.get(tx)}"
            for tx in txs
            if [(i["status"], i["device"], i["conflict"]) for i in by_tx.get(tx, [])]
            != [("checked", "counter-vm", False)]
        ]
        return self.r.line(
            not bad, name, "; ".join(bad) or f"{len(txs)} receipts, each checked once"
        )

    def kiosk_json(self, args: str) -> Any:
        out = self.vm.ssh(
            f"sudo -u kiosk /usr/local/bin/kiosk {args} --config /etc/kiosk/kiosk.toml"
        )
        if out.returncode != 0:
            raise RuntimeError(f"kiosk {args}: {out.stderr.strip()[-500:]}")
        return json.loads(out.stdout)

    def current(self) -> str:
        return self.vm.ssh("readlink /opt/kiosk/current").stdout.strip()

    # --- the steps --------------------------------------------------------------------

    def prepare(self) -> Path:
        w = self.work
        with self.r.timed("image"):
            r = run(
                ["bash", str(HERE / "build-image.sh"), "--arch", self.arch, str(w / "standin.img")]
            )
        cached = "using the cached stand-in" in r.stderr
        self.r.times["image_cached" if cached else "image_cold"] = self.r.times["image"]
        if not self.r.line(
            r.returncode == 0,
            f"stand-in image (Debian trixie {self.arch}, stock Lite's packages, Pi card layout)",
            f"{'cached' if cached else 'built'} in {self.r.times['image']:.0f}s"
            if r.returncode == 0
            else r.stderr[-1500:],
        ):
            raise SystemExit(1)
        self.backend.start()
        client_id, self.secret = self.backend.new_client()
        (w / "kiosk.toml").write_text(
            kiosk_toml(client_id, SCANNER_PORT[self.arch], SOURCES[self.arch])
        )
        secret = w / "client_secret"
        secret.write_text(self.secret + "\n")
        secret.chmod(0o600)
        psk = w / "studio.psk"
        psk.write_text(PSK + "\n")
        psk.chmod(0o600)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "tech@laptop",
                "-f",
                str(w / "id_ed25519"),
            ],
            check=True,
        )
        wheel = build_release(w, "0.1.0")
        self.version = "0.1.0"
        fleet_options: list[str] = []
        if self.arch == "amd64":
            self.receiver, fleet_options = fleet_steps.start_receiver(w)
        card = w / "card.img"
        argv = [
            "bash",
            str(ROOT / "scripts/flash.sh"),
            "--image",
            str(w / "standin.img"),
            "--out",
            str(card),
            "--hostname",
            "counter-vm",
            "--ssh-key",
            str(w / "id_ed25519.pub"),
            "--wifi-ssid",
            "Studio WiFi",
            "--wifi-psk-file",
            str(psk),
            "--wifi-country",
            "FI",
            "--config",
            str(w / "kiosk.toml"),
            "--client-secret-file",
            str(secret),
            "--ca-bundle",
            str(self.backend.ca),
            "--wheel",
            str(wheel),
            *(arg for t in TARGETS[self.arch] for arg in ("--target", t)),
            *fleet_options,
        ]
        with self.r.timed("flash"):
            r = run(argv, env=dict(os.environ, PYTHON=str(VENV / "python")))
        if not self.r.line(
            r.returncode == 0,
            "flash.sh writes the card (wheelhouse for "
            + ", ".join(["aarch64-cp311", "aarch64-cp313", *TARGETS[self.arch]])
            + ")",
            r.stderr[-1500:] if r.returncode else "",
        ):
            raise SystemExit(1)
        self.vm = VM(
            card,
            w,
            w / "id_ed25519",
            self.backend.https_port,
            self.receiver.port if self.receiver is not None else 0,
            arch=self.arch,
        )
        return card

    def first_boot(self) -> None:
        vm, r = self.vm, self.r
        vm.power_on()
        if not r.line(
            vm.wait_ssh(600),
            "first boot: tech logs in over SSH with the key",
            f"{time.monotonic() - vm.started:.0f}s after power-on",
        ):
            raise SystemExit(1)
        r.times["first_boot_ssh"] = time.monotonic() - vm.started
        # cloud-init restarts sshd once (ssh_pwauth): a session cut then (255) is retried.
        deadline = time.monotonic() + 900
        while True:
            st = vm.ssh("cloud-init status --wait --long", timeout=900)
            if st.returncode != 255 or time.monotonic() > deadline:
                break
            time.sleep(2)
        r.times["first_boot_cloud_init"] = time.monotonic() - vm.started
        errors = re.findall(r"^(?:errors|recoverable_errors):.*(?:\n[ -].*)*", st.stdout, re.M)
        ok = st.returncode == 0 and "status: done" in st.stdout
        r.line(
            ok,
            "cloud-init finished: status done, no errors",
            f"{r.times['first_boot_cloud_init']:.0f}s after power-on"
            if ok
            else f"rc {st.returncode}: {st.stdout.strip()[-1500:]} {errors}",
        )
        ready = vm.wait_active(240)
        r.times["first_boot_ready"] = time.monotonic() - vm.started
        u = vm.unit("Type", "ActiveState", "SubState", "StatusText", "NRestarts")
        r.line(
            ready and u.get("Type") == "notify",
            "kiosk.service active after READY=1",
            f"{r.times['first_boot_ready']:.0f}s after power-on; {u}",
        )
        if not ready:
            log = vm.ssh(
                "sudo tail -n 60 /var/log/cloud-init-output.log; sudo journalctl -u kiosk"
                " -n 40 --no-pager"
            )
            r.info(log.stdout[-4000:])

    def install_checks(self) -> None:
        vm, r = self.vm, self.r
        pw = run(
            [
                *vm.ssh_argv(
                    "-o",
                    "PubkeyAuthentication=no",
                    "-o",
                    "PreferredAuthentications=password,keyboard-interactive",
                ),
                "true",
            ],
            timeout=30,
        )
        r.line(
            pw.returncode != 0 and "Permission denied (publickey)" in pw.stderr,
            "password login refused (publickey only)",
            pw.stderr.strip()[-200:],
        )
        kid = vm.ssh("id kiosk").stdout.strip()
        r.line("dialout" in kid, "the kiosk user exists", kid)
        st = vm.ssh(
            "sudo stat -c '%a %U %G' /etc/kiosk/client_secret; sudo cat /etc/kiosk/client_secret"
        )
        lines = st.stdout.splitlines()
        r.line(
            lines[:2] == ["600 kiosk kiosk", self.secret],
            "client secret at /etc/kiosk, 0600 kiosk",
            " / ".join(lines[:1]),
        )
        left = vm.ssh(
            "sync; ls /boot/firmware/kiosk/client_secret /boot/firmware/network-config"
            " 2>&1; ls /boot/firmware/kiosk"
        )
        with vm.card.open("rb") as f:
            f.seek(BOOT_OFFSET)
            fat = f.read(256 * 1024 * 1024)
        in_fat = [
            n for n, s in (("secret", self.secret), ("Wi-Fi passphrase", PSK)) if s.encode() in fat
        ]
        r.line(
            "No such file" in left.stdout and left.stdout.count("No such file") == 2 and not in_fat,
            "secret and Wi-Fi passphrase gone from the boot partition (files and bytes)",
            f"still in the FAT bytes: {in_fat}" if in_fat else "",
        )
        out = vm.ssh(
            "/opt/kiosk/current/bin/kiosk --version; /opt/kiosk/current/bin/python -c "
            "'import numpy, PIL, serial; print(numpy.__version__, numpy.__file__, PIL.__file__,"
            " serial.__file__)'"
        )
        lines = out.stdout.split("\n")
        r.line(
            out.returncode == 0 and self.version in lines[0] and lines[1].count("/opt/kiosk/") == 3,
            "offline install from the card's wheelhouse (numpy, Pillow, pyserial from the card)",
            " | ".join(lines[:2]) or out.stderr.strip()[-500:],
        )
        # The stand-in is stock Lite: none of these came with the image, and first boot
        # (with no network) installed none of them from a mirror.
        lite = vm.ssh(
            "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' python3-numpy python3-systemd"
            " libzbar0t64 python3-serial python3-pil i2c-tools 2>/dev/null | grep '^ii' || true;"
            " ls /var/lib/apt/lists | grep -c Packages || true"
        ).stdout.split()
        r.line(
            lite == ["0"],
            "Lite-faithful root: no python3-numpy, python3-systemd, zbar, pyserial, Pillow,"
            " i2c-tools, and no apt lists (nothing came from a mirror)",
            " ".join(lite),
        )
        log = vm.ssh("sudo cat /var/log/cloud-init-output.log").stdout
        fleet = ("prometheus-node-exporter", "systemd-journal-remote") if self.receiver else ()
        offline = [pkg for pkg in fleet if f"installing {pkg} from the card (offline)" in log]
        r.line(
            len(offline) == len(fleet)
            and "Traceback" not in log
            and not re.search(r"kiosk-(?:fleet-)?firstboot: ERROR", log),
            "first boot with no network ends without errors"
            + (" (fleet packages installed from the card's .debs)" if fleet else ""),
            ", ".join(offline) if len(offline) == len(fleet) else log[-1500:],
        )
        sudo = vm.ssh("sudo -n true && echo sudo-ok")
        r.line(
            sudo.stdout.strip() == "sudo-ok",
            "tech runs sudo -n true (no password)",
            sudo.stderr.strip()[-300:],
        )
        journal = vm.ssh(
            "python3 -c 'import systemd' 2>&1 | tail -n 1; sudo journalctl -u kiosk -o verbose"
            " --no-pager -n 200 | grep -c '^ *KIOSK_DEVICE=counter-vm' || true"
        ).stdout.split("\n")
        r.line(
            "No module named" in journal[0] and int(journal[1] or "0") > 0,
            "journal entries carry KIOSK_ fields without python3-systemd (native protocol)",
            " | ".join(journal[:2]),
        )

    def security(self) -> None:
        vm, r = self.vm, self.r
        sec = vm.ssh("systemd-analyze security kiosk.service --no-pager 2>&1 | tail -n 1")
        m = re.search(r"exposure level for kiosk\.service: ([0-9.]+)", sec.stdout)
        r.line(
            bool(m) and float(m.group(1)) <= 2.0,
            "systemd-analyze security kiosk.service <= 2.0",
            sec.stdout.strip(),
        )
        pid = vm.unit("MainPID").get("MainPID", "0")
        probe = vm.root(
            f"grep -E '^(NoNewPrivs|CapEff|Seccomp):' /proc/{pid}/status | tr -s '\\t' ' ';"
            f" nsenter -t {pid} -m -S $(id -u kiosk) -G $(id -g kiosk) sh -c "
            "'touch /etc/kiosk-probe 2>&1; touch /usr/kiosk-probe 2>&1; "
            "touch /var/lib/kiosk/probe && rm /var/lib/kiosk/probe && echo state-writable'"
        )
        out = probe.stdout
        ok = (
            "NoNewPrivs: 1" in out
            and "CapEff: 0000000000000000" in out
            and "Seccomp: 2" in out
            and out.count("Read-only file system") == 2
            and "state-writable" in out
        )
        r.line(
            ok,
            "hardening holds in the running service (no /etc or /usr writes, no caps, seccomp)",
            out.strip().replace("\n", " | "),
        )

    def receipts(self) -> None:
        self.check_receipts(
            "receipts on the scanner port are checked once at the HTTPS backend", [6500, 5500, 4200]
        )
        # The same receipt again (after the repeat window): refused, not checked twice.
        tx, token = self.backend.mint_receipt(3000)
        self.vm.scan(token)
        self.backend.checked({tx}, timeout=60)
        time.sleep(4)
        self.vm.scan(token)
        time.sleep(8)
        items = [i for i in self.backend.history() if i["tx"] == tx]
        self.r.line(
            [(i["status"], i["conflict"]) for i in items] == [("checked", False)],
            "a receipt scanned twice is checked once",
            str(items),
        )

    def watchdog(self) -> None:
        vm, r = self.vm, self.r
        u = vm.unit("MainPID", "NRestarts")
        t = time.monotonic()
        vm.root(f"kill -STOP {u['MainPID']}")
        back = vm.wait_active(150, restarts_above=int(u["NRestarts"]))
        r.times["watchdog"] = time.monotonic() - t
        after = vm.unit("MainPID", "NRestarts", "Result")
        r.line(
            back and after["MainPID"] != u["MainPID"],
            "stalled engine (SIGSTOP): the watchdog restarts kiosk.service",
            f"active again after {r.times['watchdog']:.0f}s; {u} -> {after}",
        )
        self.check_receipts("scanning works after the watchdog restart", [2500])

    def updates(self) -> None:
        vm, r = self.vm, self.r
        opts = [
            "--host",
            "127.0.0.1",
            "--port",
            str(vm.ssh_port),
            "--ssh-key",
            str(vm.key),
            "--ssh-option",
            f"UserKnownHostsFile={self.work / 'known_hosts'}",
            "--ssh-option",
            "StrictHostKeyChecking=accept-new",
            "--timeout",
            "120",
            "--settle",
            "5",
        ]
        update = str(ROOT / "scripts/update.sh")
        broken = wheelhouse(self.work, build_release(self.work, "0.1.2", broken=True))
        third = wheelhouse(self.work, build_release(self.work, "0.1.3"))

        t = time.monotonic()
        res = run([update, *opts, "--wheelhouse", str(broken)], timeout=600)
        r.times["update_rollback"] = time.monotonic() - t
        ok = (
            res.returncode == 1
            and "running the previous release 0.1.0 (checked" in res.stderr
            and self.current() == "0.1.0"
            and vm.wait_active(10)
        )
        r.line(
            ok,
            "an update to a release that cannot start rolls back by itself",
            f"{r.times['update_rollback']:.0f}s; exit {res.returncode}; now {self.current()}"
            if ok
            else res.stderr[-2500:],
        )
        self.check_receipts("the kiosk serves again after the rollback", [1700])

        # SSH cut: kill update.sh and its ssh while the update runs on the kiosk.
        t = time.monotonic()
        proc = subprocess.Popen(
            [update, *opts, "--wheelhouse", str(third)],
            text=True,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stderr is not None
        seen = ""
        for line in proc.stderr:
            seen += line
            if "installing on" in line:
                break
        time.sleep(6)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        cut_at = time.monotonic() - t
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = vm.ssh(
                "systemctl list-units --no-legend --state=activating,active 'kiosk-update-*'"
            ).stdout.strip()
            if not busy:
                break
            time.sleep(3)
        now = self.current()
        active = vm.wait_active(30)
        version = vm.ssh("/opt/kiosk/current/bin/kiosk --version").stdout.strip()
        ok = active and now in ("0.1.0", "0.1.3") and now in version
        r.line(
            ok,
            "SSH cut during an update: the kiosk runs one release",
            f"cut {cut_at:.0f}s in; now {now} ({version}), "
            f"{'active' if active else 'NOT active'}; {'' if ok else seen[-1500:]}",
        )
        self.check_receipts("scanning works after the cut update", [1600])

    def power_cut(self) -> None:
        vm, r, be = self.vm, self.r, self.backend
        minted = [be.mint_receipt(1000 + i) for i in range(7)]
        # The outage: the backend stops and the kiosk's route to it goes, as when the
        # studio's uplink fails. (QEMU's user networking accepts a forwarded connection
        # before the host side is tried, so a stopped backend alone looks to the kiosk
        # like a connection reset in the TLS handshake: outcome unknown, retried.)
        be.down()
        vm.root(f"ip route add unreachable {BACKEND_IP}/32")
        time.sleep(2)
        for _tx, token in minted[:5]:
            vm.scan(token)
            time.sleep(1.5)
        for _tx, token in minted[5:]:
            vm.scan(token)
            time.sleep(0.3)
        vm.power_cut()
        r.info(f"power cut (kill -9 of QEMU) after {len(minted)} scans with the backend down")
        be.up()  # the route is gone with the reboot
        vm.backend_port = be.https_port
        vm.power_on()
        ready = vm.wait_ssh(240) and vm.wait_active(240)
        r.times["power_cut_ready"] = time.monotonic() - vm.started
        r.line(
            ready,
            "boot after the power cut: kiosk.service active",
            f"{r.times['power_cut_ready']:.0f}s after power-on",
        )
        integrity = vm.ssh(
            "sudo -u kiosk python3 -c \"import sqlite3; c = sqlite3.connect('file:/var/lib/kiosk/"
            "journal.db?mode=ro', uri=True); print(c.execute('PRAGMA integrity_check')"
            '.fetchone()[0])"'
        )
        r.line(
            integrity.stdout.strip() == "ok",
            "journal integrity check after the power cut",
            (integrity.stdout + integrity.stderr).strip()[-300:],
        )
        burst = {tx for tx, _ in minted}
        local = self.kiosk_json("history --local --json")["items"]
        seen = sorted((i["tx"], i["outcome"]) for i in local if i["tx"] in burst)
        accepted = {tx for tx, outcome in seen if outcome in ("checked", "checked_offline")}
        offline = {tx for tx, outcome in seen if outcome == "checked_offline"}
        r.info(f"accepted before the power cut, in the kiosk's journal: {seen}")
        be.checked(accepted, timeout=120)  # the sync uploads them
        by_tx: dict[str, list[dict[str, Any]]] = {}
        for i in be.history():
            if i["tx"] in burst:
                by_tx.setdefault(i["tx"], []).append(i)
        once = all(
            [(i["status"], i["conflict"]) for i in by_tx.get(tx, [])] == [("checked", False)]
            for tx in accepted
        )
        twice = {tx for tx, lst in by_tx.items() if len(lst) > 1 or lst[0]["conflict"]}
        remote = {tx for tx, lst in by_tx.items() if any(i["status"] == "checked" for i in lst)}
        r.line(
            bool(offline) and once and not twice and accepted <= remote,
            "power cut in a burst: every receipt the kiosk accepted is checked exactly once",
            f"accepted {len(accepted)} of {len(burst)} ({len(offline)} offline), checked at "
            f"the backend {len(remote)}, twice or in conflict {sorted(twice)}, "
            f"missing {sorted(accepted - remote)}, "
            f"checked but not accepted before the cut {sorted(remote - accepted)}",
        )

    def power_cut_online(self) -> None:
        """A cut right after an online receipt's result: the answer's commit may not be
        durable yet (one flush per scan). After the reboot the kiosk recovers the scan
        before serving (re-sent with its key, the backend replays its answer), and the
        same receipt scanned again is "already accepted here": one check at the
        backend, one row of money."""
        vm, r, be = self.vm, self.r, self.backend
        tx, token = be.mint_receipt(2700)
        vm.scan(token)
        committed = be.committed(tx, timeout=30)
        vm.power_cut()  # within milliseconds of the backend's commit
        r.info(f"power cut right after the backend checked {tx} (seen: {committed})")
        vm.power_on()
        ready = vm.wait_ssh(240) and vm.wait_active(240)
        r.line(ready, "boot after the cut after an online result: kiosk.service active",
               f"{time.monotonic() - vm.started:.0f}s after power-on")  # fmt: skip
        vm.scan(token)
        time.sleep(6)
        rows = [i for i in self.kiosk_json("history --local --json")["items"] if i["tx"] == tx]
        outcomes = sorted((i["outcome"], i["reason"] == "local") for i in rows)
        money = [i["money_cents"] for i in rows if i["money_cents"]]
        remote = [(i["status"], i["conflict"]) for i in be.history() if i["tx"] == tx]
        r.line(
            committed and outcomes == [("already_checked", True), ("checked", False)]
            and money == [2700] and remote == [("checked", False)],
            "cut after an online result: the rescan is already accepted here, one check, "
            "one row of money",
            f"local {outcomes}, money {money}, backend {remote}",
        )  # fmt: skip

    def camera_waits(self) -> None:
        """A camera kiosk whose python3-picamera2 only the network can bring: first boot
        leaves it to kiosk-packages.timer, status names what is missing, and the serial
        scanner configured beside the camera serves meanwhile (the receipts step)."""
        vm, r = self.vm, self.r
        pending = vm.ssh(
            "cat /var/lib/kiosk-packages/pending; systemctl is-enabled kiosk-packages.timer"
        ).stdout.split()
        sources = {s["name"]: s for s in self.kiosk_json("status --json")["sources"]}
        camera, serial = sources.get("camera", {}), sources.get("serial", {})
        r.line(
            pending == ["python3-picamera2", "enabled"]
            and camera.get("ok") is False
            and "python3-picamera2 is missing" in camera.get("detail", "")
            and serial.get("ok") is True,
            "camera kiosk without python3-picamera2: the timer retries, status names it, the"
            " serial scanner is up",
            f"pending {pending}; camera {camera.get('detail', camera)}; serial {serial}",
        )

    def memory_modes(self) -> None:
        """``kiosk run`` per mode on the Pi's architecture (tests/device/modes.py)."""
        modes.run(self, self.figures_out)

    def memory(self) -> None:
        """``kiosk run``'s resident memory after serving receipts (the Pi has 512 MB-8 GB)."""
        pid = self.vm.unit("MainPID").get("MainPID", "0")
        out = self.vm.ssh(f"ps -o rss= -o comm= -p {pid}").stdout.split()
        rss_mb = int(out[0]) / 1024 if out and out[0].isdigit() else 0.0
        self.r.times["kiosk_rss_mb"] = rss_mb
        # PSS and USS as bench/memory.py reads them (kB in smaps_rollup).
        rollup = self.vm.root(f"cat /proc/{pid}/smaps_rollup").stdout
        kb = {
            k: int(v.split()[0])
            for k, v in (line.split(":", 1) for line in rollup.splitlines() if ":" in line)
            if v.strip().endswith("kB")
        }
        uss_mb = (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
        self.r.line(
            0 < rss_mb < 150,
            f"kiosk run's RSS on {self.arch} after the receipts",
            f"{rss_mb:.1f} MB ({' '.join(out[1:])}); PSS {kb.get('Pss', 0) / 1024:.1f} MB,"
            f" USS {uss_mb:.1f} MB",
        )

    def fleet_watch(self) -> None:
        assert self.receiver is not None
        fleet_steps.watch(self, self.receiver)

    def fleet_ansible(self) -> None:
        release = wheelhouse(self.work, build_release(self.work, fleet_steps.FLEET_RELEASE))
        fleet_steps.ansible(self, release)

    def shutdown(self) -> None:
        if getattr(self, "vm", None) is None:
            return
        with suppress(subprocess.TimeoutExpired):
            self.vm.ssh("sudo systemctl poweroff", timeout=20)
        if not self.vm.wait_off(60):
            self.vm.power_cut()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", default="", help="comma list of steps (after the first boot)")
    ap.add_argument("--arch", choices=("amd64", "arm64"), default="amd64")
    ap.add_argument(
        "--figures",
        type=Path,
        help="write memory-modes' figures (JSON) here for bench/run_all.py, when the step passes",
    )
    args = ap.parse_args(argv)
    # Nothing here reads the terminal; a child (QEMU, ssh) that set the inherited stdin
    # non-blocking would make ansible-playbook refuse to start.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    report = Report()
    work = Path(tempfile.mkdtemp(prefix=f"kiosk-device-test-{args.arch}-"))
    test = DeviceTest(work, report, args.arch, args.figures.resolve() if args.figures else None)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("install", test.install_checks),
        ("security", test.security),
        ("receipts", test.receipts),
        ("memory", test.memory),
        ("fleet", test.fleet_watch),
        ("watchdog", test.watchdog),
        ("updates", test.updates),
        ("powercut", test.power_cut),
        ("powercut-online", test.power_cut_online),
        ("ansible", test.fleet_ansible),
    ]
    if args.arch == "arm64":  # full emulation is slow: what only the Pi's architecture shows
        steps = [
            ("install", test.install_checks),
            ("receipts", lambda: test.check_receipts("receipts on the serial port", [6500, 4200])),
            ("camera", test.camera_waits),
            ("memory", test.memory),
            ("memory-modes", test.memory_modes),
        ]
    only = set(filter(None, args.only.split(",")))
    try:
        test.prepare()
        test.first_boot()
        for name, step in steps:
            if only and name not in only:
                continue
            try:
                step()
            except Exception as exc:  # one broken step must not hide the others' results
                report.line(False, f"{name}: {type(exc).__name__}", str(exc)[-1500:])
    except SystemExit:
        pass
    finally:
        test.shutdown()
        test.backend.stop()
        if test.receiver is not None:
            test.receiver.__exit__(None, None, None)
    vm = getattr(test, "vm", None)
    for panic in vm.panics if vm is not None else []:
        report.info(f"the emulated guest's kernel panicked and was powered on again: {panic}")
    t = report.times
    print("device test times: " + ", ".join(f"{k} {v:.0f}s" for k, v in t.items()), flush=True)
    total = time.monotonic() - report.start
    if report.failed:
        print(
            f"device test: {len(report.failed)} FAILED, {report.passed} passed in {total:.0f}s; "
            f"logs kept in {work}"
        )
        return 1
    print(f"device test: all {report.passed} passed in {total:.0f}s")
    if args.keep:
        print(f"device test: work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
