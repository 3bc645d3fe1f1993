"""A flashed card booted in QEMU, as the Pi firmware would boot it, plus SSH into it.

The kernel, initrd and command line are read from the card's FAT `bootfs` partition
(config.txt `kernel=` and `initramfs`, cmdline.txt). Software emulation (TCG), 1 GiB,
2 vCPUs; user-mode networking with ``restrict=on``: the guest reaches only SSH
(forwarded from 127.0.0.1), node_exporter's port 9100 (forwarded likewise), the
backend address and the log server address (each relayed to a host port by
``relay.py``). amd64: ``qemu-system-x86_64``, ttyS0 the console (a log file per
boot), ttyS1 the barcode scanner, a Unix socket the host stays connected to. arm64:
``qemu-system-aarch64 -M virt -cpu cortex-a72`` (Debian's arm64 kernel is an Image
``-kernel`` loads directly), hvc0 (virtio console) the console and the PL011 UART
ttyAMA0 the scanner, as a Pi's GPIO UART with ``flash.sh --uart-scanner``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BOOT_OFFSET = 8192 * 512  # the bootfs partition of the stand-in (and of Raspberry Pi OS)
BACKEND_IP = "10.0.2.100"
BACKEND_PORT = 443
LOG_IP = "10.0.2.101"  # the studio chain's systemd-journal-remote, as the guest sees it
LOG_PORT = 19532
METRICS_PORT = 9100  # prometheus-node-exporter in the guest
HERE = Path(__file__).resolve().parent
MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")
PANIC = "Kernel panic - not syncing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mtype(card: Path, name: str) -> str:
    argv = ["mtype", "-i", f"{card}@@{BOOT_OFFSET}", f"::{name}"]
    return subprocess.run(argv, capture_output=True, text=True, env=MT_ENV, check=True).stdout


class VM:
    def __init__(
        self,
        card: Path,
        dir: Path,
        key: Path,
        backend_port: int,
        log_port: int = 0,
        arch: str = "amd64",
    ) -> None:
        self.arch = arch
        self.card = card
        self.dir = dir
        self.key = key
        self.backend_port = backend_port
        self.log_port = log_port  # the host's journal receiver; 0: none
        self.ssh_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.scanner: socket.socket | None = None
        self.boots = 0
        self.panics: list[str] = []  # guest kernel panics the emulator ran into
        self.started = 0.0

    # --- power ---------------------------------------------------------------------

    def _firmware(self) -> tuple[Path, Path, str]:
        """What the Pi firmware reads from bootfs: kernel, initramfs, command line."""
        kernel = initrd = ""
        for line in mtype(self.card, "config.txt").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("kernel="):
                kernel = line.split("=", 1)[1]
            elif line.startswith("initramfs "):
                initrd = line.split()[1]
        if not kernel or not initrd:
            raise RuntimeError("config.txt on bootfs names no kernel= or initramfs")
        out = self.dir / "firmware"
        out.mkdir(exist_ok=True)
        for name in (kernel, initrd):
            subprocess.run(
                ["mcopy", "-o", "-i", f"{self.card}@@{BOOT_OFFSET}", f"::{name}", str(out / name)],
                check=True,
                env=MT_ENV,
            )
        cmdline = mtype(self.card, "cmdline.txt").strip()
        return out / kernel, out / initrd, cmdline

    def power_on(self) -> None:
        kernel, initrd, cmdline = self._firmware()
        self.boots += 1
        sock = self.dir / "scanner.sock"
        sock.unlink(missing_ok=True)
        # -I -S: no site packages, so each connection's relay starts in milliseconds.
        python = shutil.which("python3") or sys.executable
        relay = f"{python} -I -S {HERE / 'relay.py'}"
        netdev = (
            f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,"
            f"hostfwd=tcp:127.0.0.1:{self.metrics_port}-:{METRICS_PORT},"
            f"guestfwd=tcp:{BACKEND_IP}:{BACKEND_PORT}-cmd:{relay} {self.backend_port}"
        )
        if self.log_port:
            netdev += f",guestfwd=tcp:{LOG_IP}:{LOG_PORT}-cmd:{relay} {self.log_port}"
        if self.arch == "arm64":
            machine = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72"]
        else:
            machine = ["qemu-system-x86_64", "-cpu", "max"]
        argv = [
            *machine,
            "-accel",
            "tcg,thread=multi",
            "-smp",
            "2",
            "-m",
            "1024",
            "-display",
            "none",
            "-monitor",
            "none",
            "-nodefaults",
            "-kernel",
            str(kernel),
            "-initrd",
            str(initrd),
            "-append",
            cmdline,
            "-drive",
            f"file={self.card},format=raw,if=virtio,cache=unsafe",
            "-netdev",
            netdev,
            "-device",
            "virtio-net-pci,netdev=net0",
            "-chardev",
            f"file,id=console,path={self.dir / f'console-{self.boots}.log'}",
            *(
                ["-device", "virtio-serial-pci", "-device", "virtconsole,chardev=console"]
                if self.arch == "arm64"
                else ["-serial", "chardev:console"]
            ),
            "-chardev",
            f"socket,id=scanner,path={sock},server=on,wait=off",
            "-serial",
            "chardev:scanner",
            "-rtc",
            "base=utc",
        ]
        log = (self.dir / f"qemu-{self.boots}.log").open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"QEMU did not start; see {self.dir}/qemu-{self.boots}.log")
            time.sleep(0.1)
        # The host side of the scanner port stays connected for the whole boot.
        self.scanner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.scanner.connect(str(sock))

    def power_cut(self) -> None:
        """kill -9 of QEMU: the guest gets no warning, as at the wall."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        if self.scanner is not None:
            self.scanner.close()
            self.scanner = None

    def wait_off(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.proc = None
        return True

    def _panic_line(self) -> str:
        lines = [line for line in self.console().splitlines() if "Oops" in line or PANIC in line]
        return " / ".join(line.strip() for line in lines[:2])

    def console(self) -> str:
        path = self.dir / f"console-{self.boots}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- scanner --------------------------------------------------------------------

    def scan(self, text: str) -> None:
        """A read of the barcode scanner: the text and CR LF on ttyS1."""
        assert self.scanner is not None
        self.scanner.sendall(text.encode() + b"\r\n")

    # --- ssh ------------------------------------------------------------------------

    def ssh_argv(self, *extra: str) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key),
            "-p",
            str(self.ssh_port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            *extra,
            "tech@127.0.0.1",
        ]

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.ssh_argv(), command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def root(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.ssh("sudo sh -c " + shlex.quote(command), timeout=timeout)

    def wait_ssh(self, timeout: float) -> bool:
        """SSH answers within *timeout*. A guest kernel panic on the way (seen under
        QEMU's multi-threaded TCG on a loaded host: an int3 Oops while the kernel patches
        its own code) is the emulator's, not the card's: the machine is powered on again
        once, noted in :attr:`panics`, and the wait starts over."""
        deadline = time.monotonic() + timeout
        seen = len(self.console())
        retried = False
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            if not retried and PANIC in self.console()[seen:]:
                retried = True
                self.panics.append(f"boot {self.boots}: {self._panic_line()}")
                self.power_cut()
                self.power_on()
                seen = 0
                deadline = time.monotonic() + timeout
                continue
            try:
                if self.ssh("true", timeout=15).returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        return False

    def unit(self, *props: str) -> dict[str, str]:
        out = self.ssh("systemctl show kiosk.service -p " + ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_active(self, timeout: float, *, restarts_above: int = -1) -> bool:
        """kiosk.service active (READY=1 sent), with more than *restarts_above* restarts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                u = self.unit("ActiveState", "NRestarts")
            except subprocess.TimeoutExpired:
                continue
            if u.get("ActiveState") == "active" and int(u.get("NRestarts", "0")) > restarts_above:
                return True
            time.sleep(1)
        return False
