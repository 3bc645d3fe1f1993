"""Memory of the real `kiosk run` per mode: serial scanner, HID scanner, camera at 10 fps.

    python bench/memory.py [--seconds 30] [--modes serial,hid,camera] [--fsync-ms 0]
                           [--json FILE]

Spawns ``python -m kiosk run`` once per mode and samples it twice a second:
RSS, PSS and USS (private clean + dirty) from ``/proc/PID/smaps_rollup``, RSS
split into anonymous memory and mapped files, open files and threads; the
figures are the peaks over the run. Budgets (RSS, x86-64): a serial or HID
scanner kiosk <= 55 MB, a camera kiosk at 10 fps with LED, buzzer and buttons
<= 80 MB.

- serial: a real pseudo-terminal as the scanner port; a fresh receipt is written
  every 2 s, checked at the backend and shown. No GPIO pins (as the serial kiosk of
  ``tests/kiosk/test_service.py``, which also lists what it must not load).
- hid: ``[scanner] source = "hid"`` on an event device that does not exist here (and
  evdev may be missing): the kiosk keeps retrying it; the HID reader's own library
  is not counted.
- camera: ``source = "replay"``, the camera path (CameraReader, idle gate, zxing-cpp)
  fed 640x480 frames at 10 fps, mostly an empty counter and every second a phone with
  a receipt QR; LED, buzzer and three buttons on gpiozero's mock pins
  (``GPIOZERO_PIN_FACTORY=mock``), so gpiozero is loaded as on a Pi.

The display is luma's ``dummy`` device (``driver = "none"``): Pillow and luma are
loaded as with an OLED. The reference backend runs in this process, so the figures
are the kiosk's alone. The baseline is the RSS of a bare Python that imported numpy,
zxing-cpp and Pillow. Mapped files depend on the page cache: right after the venv is
installed its libraries sit in the cache in large folios and map whole, and the same
kiosk reads several MB higher than once they have been read back from disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path
from typing import Any

import numpy as np
import segno
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _fsync import PREFIX_VAR, preload_env  # noqa: E402

from refbackend import DEMO_VENUE, ReferenceBackend  # noqa: E402

MODES = ("serial", "hid", "camera")
# Budgets per mode (RSS, peak over the run, x86-64): the libraries a mode needs cost most of it.
BUDGET_MB = {"serial": 55.0, "hid": 55.0, "camera": 80.0}
EXTRA_ENV = [e for e in os.environ.get("KIOSK_BENCH_ENV", "").split() if "=" in e]
FPS = 10


def frames(folder: Path, token: str, seconds: int = 1) -> None:
    """A one-second loop: an empty counter, then a phone with the QR for the last frame."""
    rng = np.random.default_rng(7)
    empty = (90 + rng.normal(0, 3, (480, 640))).clip(0, 255).astype(np.uint8)
    qr = segno.make(token, error="m")
    scale = max(2, 300 // qr.symbol_size()[0])
    code = np.asarray(Image.open(_png(qr, scale)).convert("L"))
    phone = empty.copy()
    h, w = code.shape
    phone[90 : 90 + h, 170 : 170 + w] = code[: 480 - 90, : 640 - 170]
    for i in range(seconds * FPS):
        pixels = phone if i == seconds * FPS - 1 else empty
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def _png(qr: segno.QRCode, scale: int) -> Path:
    path = Path(tempfile.mkstemp(suffix=".png")[1])
    qr.save(str(path), scale=scale, border=4)
    return path


def config(work: Path, backend: ReferenceBackend, mode: str, source: Path) -> Path:
    """A kiosk.toml for *mode*; *source* is the replay folder, the pty's link or the event
    device. The camera kiosk has its LED, buzzer and buttons (on gpiozero's mock pins);
    the scanner kiosks none, as the serial kiosk of ``tests/kiosk/test_service.py``."""
    client_id, secret = backend.create_client(DEMO_VENUE)
    secret_file = work / "client_secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    match mode:
        case "camera":
            scanner = f'source = "replay"\n[camera]\nfps = {FPS}\nreplay_dir = "{source}"'
            pins = (17, 18, 5, 6, 13)
        case "serial":
            scanner = f'source = "serial"\nport = "{source}"\nline_timeout = 0.2'
            pins = (-1, -1, -1, -1, -1)
        case _:
            scanner = f'source = "hid"\nhid_device = "{source}"'
            pins = (-1, -1, -1, -1, -1)
    path = work / "kiosk.toml"
    path.write_text(
        f"""
[device]
id = "counter-1"
venue = "{DEMO_VENUE}"
[backend]
url = "{backend.url}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
issuer = "{backend.issuer}"
[scanner]
{scanner}
[display]
driver = "none"
[signals]
led_pin = {pins[0]}
buzzer_pin = {pins[1]}
button_up = {pins[2]}
button_down = {pins[3]}
button_ok = {pins[4]}
[journal]
path = "{work / "journal.db"}"
min_free_mb = 0
[metrics]
textfile = "{work / "kiosk.prom"}"
"""
    )
    return path


def rollup(pid: int) -> dict[str, float]:
    """RSS, PSS, USS (private clean + dirty), anonymous and file-backed memory in MB, from
    /proc/<pid>/smaps_rollup."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            kb[name.strip()] = int(parts[0])
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {
        "rss": kb["Rss"] / 1024,
        "pss": kb["Pss"] / 1024,
        "uss": uss / 1024,
        "anon": kb.get("Anonymous", 0) / 1024,
        "file": (kb["Rss"] - kb.get("Anonymous", 0)) / 1024,
    }


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline_mb() -> float:
    code = (
        "import numpy, zxingcpp, PIL.Image, sys\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def measure(mode: str, seconds: float, fsync_ms: int = 0) -> dict[str, Any]:
    """Run ``kiosk run`` in *mode* for *seconds* after READY=1; peak and last figures.

    *fsync_ms* > 0 runs the kiosk under the fsync shim (``bench/_fsync.py``), every flush
    of its journal that much slower."""
    with tempfile.TemporaryDirectory(prefix="kiosk-memory-") as tmp:
        work = Path(tmp)
        with ReferenceBackend(work / "backend.db", dev=True) as backend:
            tokens = [backend.mint_receipt(DEMO_VENUE, 6500)[1] for _ in range(2)]
            pty: tuple[int, int] | None = None
            if mode == "camera":
                source = work / "frames"
                source.mkdir()
                frames(source, tokens[0])
            elif mode == "serial":
                master, slave = os.openpty()
                tty.setraw(slave)
                pty = (master, slave)
                source = work / "scanner"
                source.symlink_to(os.ttyname(slave))
                tokens += [
                    backend.mint_receipt(DEMO_VENUE, 6500)[1] for _ in range(int(seconds / 2))
                ]
            else:
                source = work / "event-scanner"  # evdev may be missing: the kiosk retries
            cfg = config(work, backend, mode, source)
            try:
                extra = {}
                if fsync_ms > 0:
                    extra = {**preload_env(fsync_ms, {}), PREFIX_VAR: str(work.resolve())}
                result = _run(mode, cfg, work, seconds, pty, tokens, extra)
                return {**result, "fsync_ms": fsync_ms}
            finally:
                if pty is not None:
                    os.close(pty[0])
                    os.close(pty[1])


def _run(
    mode: str,
    cfg: Path,
    work: Path,
    seconds: float,
    pty: tuple[int, int] | None,
    tokens: list[str],
    extra_env: dict[str, str],
) -> dict[str, Any]:
    notify = work / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(30)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify),
            "KIOSK_LOG_LEVEL": "warning",
            "GPIOZERO_PIN_FACTORY": "mock",
            **dict(e.split("=", 1) for e in EXTRA_ENV),
            **extra_env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while "READY=1" not in sock.recv(4096).decode():
                pass
            samples: list[dict[str, float]] = []
            scans = 0
            start_cpu, start = cpu_s(proc.pid), time.monotonic()
            next_scan = start + 1.0
            while time.monotonic() - start < seconds:
                time.sleep(0.5)
                if pty is not None and time.monotonic() >= next_scan and scans < len(tokens):
                    os.write(pty[0], tokens[scans].encode() + b"\r\n")
                    scans += 1
                    next_scan += 2.0
                samples.append({**rollup(proc.pid), **counts(proc.pid)})
            cpu = (cpu_s(proc.pid) - start_cpu) / (time.monotonic() - start)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"kiosk run exited {proc.returncode}: {err.decode()[-400:]}")
    peak = max(samples, key=lambda s: s["rss"])
    budget = BUDGET_MB[mode]
    return {
        "mode": mode,
        "seconds": seconds,
        "fps": FPS if mode == "camera" else None,
        "scans": scans,
        "rss_peak_mb": round(peak["rss"], 1),
        "pss_peak_mb": round(max(s["pss"] for s in samples), 1),
        "uss_peak_mb": round(max(s["uss"] for s in samples), 1),
        "rss_last_mb": round(samples[-1]["rss"], 1),
        "rss_anon_mb": round(peak["anon"], 1),
        "rss_file_mb": round(peak["file"], 1),
        "fds": [int(min(s["fds"] for s in samples)), int(max(s["fds"] for s in samples))],
        "threads": [
            int(min(s["threads"] for s in samples)),
            int(max(s["threads"] for s in samples)),
        ],
        "cpu_percent": round(cpu * 100, 1),
        "target_mb": budget,
        "ok": peak["rss"] <= budget,
    }


def counts(pid: int) -> dict[str, float]:
    """Open files and threads of *pid*."""
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--fsync-ms", type=int, default=0, help="extra ms per fsync of the kiosk's journal"
    )
    args = parser.parse_args(argv)
    results = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        r = measure(mode, args.seconds, args.fsync_ms)
        results.append(r)
        print(
            f"kiosk run, {mode} for {args.seconds:.0f} s, fsync +{args.fsync_ms} ms:"
            f" RSS peak {r['rss_peak_mb']} MB"
            f" (budget <= {r['target_mb']:.0f} MB), PSS {r['pss_peak_mb']} MB, USS"
            f" {r['uss_peak_mb']} MB (anonymous {r['rss_anon_mb']} MB, mapped files"
            f" {r['rss_file_mb']} MB), CPU {r['cpu_percent']}% of one core,"
            f" files {r['fds']}, threads {r['threads']}"
        )
    out = {
        "modes": results,
        "baseline_mb": round(baseline_mb(), 1),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "fsync_ms": args.fsync_ms,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
