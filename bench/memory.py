"""Memory and CPU of the real `kiosk run` with the camera pipeline at 10 fps.

    python bench/memory.py [--seconds 30] [--json FILE]

Spawns ``python -m kiosk run`` with ``[scanner] source = "replay"``: the camera
path (CameraReader, idle gate, zxing-cpp decoder) fed from a folder of 640x480
frames, mostly an empty counter and every few seconds a phone with a receipt
QR. LED and buzzer are fitted, as on a real kiosk, on gpiozero's mock pins
(``GPIOZERO_PIN_FACTORY=mock``): the kiosk loads gpiozero as it does on a Pi. The
reference backend runs in this process, so the figures are the kiosk's alone.
Samples VmRSS and the CPU time of the kiosk process once a second; the baseline
is the RSS of a bare Python that imported numpy, zxing-cpp and Pillow. RSS is
reported split into anonymous memory (the heap, Python's objects) and mapped
files (shared libraries, fonts). The latter depends on the page cache: right after
the venv is installed its libraries sit in the cache in large folios and map
whole, and the same kiosk reads several MB higher than once they have been
read back from disk (as after a reboot).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import segno
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refbackend import DEMO_VENUE, ReferenceBackend  # noqa: E402

RSS_TARGET_MB = 70.0
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


def config(work: Path, backend: ReferenceBackend, replay: Path) -> Path:
    client_id, secret = backend.create_client(DEMO_VENUE)
    secret_file = work / "client_secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
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
source = "replay"
[camera]
fps = {FPS}
replay_dir = "{replay}"
[display]
driver = "none"
[signals]
led_pin = 17
buzzer_pin = 18
button_up = -1
button_down = -1
button_ok = -1
[journal]
path = "{work / "journal.db"}"
min_free_mb = 0
"""
    )
    return path


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """*field* of /proc/<pid>/status in MB: VmRSS, RssAnon or RssFile."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


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


def measure(seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiosk-memory-") as tmp:
        work = Path(tmp)
        replay = work / "frames"
        replay.mkdir()
        with ReferenceBackend(work / "backend.db", dev=True) as backend:
            _, token = backend.mint_receipt(DEMO_VENUE, 6500)
            frames(replay, token)
            cfg = config(work, backend, replay)
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
                    samples, split = [], (0.0, 0.0)
                    start_cpu, start = cpu_s(proc.pid), time.monotonic()
                    while time.monotonic() - start < seconds:
                        time.sleep(1.0)
                        samples.append(rss_mb(proc.pid))
                        if samples[-1] == max(samples):
                            split = (rss_mb(proc.pid, "RssAnon"), rss_mb(proc.pid, "RssFile"))
                    cpu = (cpu_s(proc.pid) - start_cpu) / (time.monotonic() - start)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    _, err = proc.communicate(timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(f"kiosk run exited {proc.returncode}: {err.decode()[-400:]}")
    peak = max(samples)
    return {
        "seconds": seconds,
        "fps": FPS,
        "rss_peak_mb": round(peak, 1),
        "rss_last_mb": round(samples[-1], 1),
        "rss_anon_mb": round(split[0], 1),
        "rss_file_mb": round(split[1], 1),
        "cpu_percent": round(cpu * 100, 1),
        "baseline_mb": round(baseline_mb(), 1),
        "target_mb": RSS_TARGET_MB,
        "ok": peak < RSS_TARGET_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.seconds)
    print(
        f"kiosk run, camera replay at {FPS} fps for {args.seconds:.0f} s: "
        f"RSS peak {result['rss_peak_mb']} MB (target < {RSS_TARGET_MB:.0f} MB; anonymous"
        f" {result['rss_anon_mb']} MB, mapped files {result['rss_file_mb']} MB), "
        f"CPU {result['cpu_percent']}% of one core; bare Python with numpy, zxing-cpp and "
        f"Pillow {result['baseline_mb']} MB"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
