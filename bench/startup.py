"""Start-up: ``kiosk run`` to READY=1 on simulated hardware, against ``python -c pass``.

    python bench/startup.py [--runs 10] [--json FILE] [--importtime]

Each run starts ``python -m kiosk run`` as systemd would: a fresh process with
``NOTIFY_SOCKET`` pointing at a datagram socket this script listens on. The
time is from just before the process is spawned to the arrival of the
``READY=1`` datagram (config read, journal opened, keys loaded, display and
scanner up). Simulated hardware: display driver ``none`` (luma's dummy device),
scanner ``stdin``, no LED, buzzer or buttons (pins -1), the reference backend
on 127.0.0.1. The journal persists across runs like on a kiosk, so the first
run also fetches the key set. After READY the process gets SIGTERM and must
exit 0. The baseline is ``python -c pass`` with the same interpreter, measured
in the same run. ``--importtime`` prints the slowest imports of one start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from refbackend import DEMO_VENUE, ReferenceBackend

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
READY_TIMEOUT_S = 30.0

CONFIG = """
[device]
id = "startup-1"
venue = "{venue}"
[backend]
url = "{url}"
client_id = "{client_id}"
client_secret_file = "{secret}"
issuer = "{issuer}"
connect_timeout = 1.0
read_timeout = 2.0
[scanner]
source = "stdin"
[display]
driver = "none"
[signals]
led_pin = -1
buzzer_pin = -1
button_up = -1
button_down = -1
button_ok = -1
[journal]
path = "{journal}"
min_free_mb = 0
"""


def write_config(work: Path, backend: ReferenceBackend) -> Path:
    client_id, secret = backend.create_client(DEMO_VENUE)
    secret_file = work / "client_secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    path = work / "kiosk.toml"
    path.write_text(
        CONFIG.format(
            venue=DEMO_VENUE,
            url=backend.url,
            client_id=client_id,
            secret=secret_file,
            issuer=backend.issuer,
            journal=work / "journal.db",
        )
    )
    return path


def time_to_ready(config: Path, work: Path, extra: tuple[str, ...] = ()) -> tuple[float, str]:
    """Seconds from spawn to READY=1, and the process's stderr (after a clean stop)."""
    address = str(work / "notify.sock")
    if os.path.exists(address):
        os.unlink(address)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(READY_TIMEOUT_S)
        env = {**os.environ, "NOTIFY_SOCKET": address, "KIOSK_LOG_LEVEL": "warning"}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *extra, "-m", "kiosk", "run", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while True:
                message = sock.recv(4096).decode()
                if "READY=1" in message.split("\n"):
                    ready = time.perf_counter() - started
                    break
        except TimeoutError:
            proc.kill()
            raise RuntimeError(f"no READY=1 within {READY_TIMEOUT_S} s") from None
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError("kiosk run did not stop within 20 s of SIGTERM") from None
        if proc.returncode != 0:
            raise RuntimeError(f"kiosk run exited {proc.returncode}: {err.decode()[-500:]}")
        return ready, err.decode()


def time_python_pass() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def slowest_imports(stderr: str, top: int = 15) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of -X importtime output, slowest first."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = line.split("|")
            try:
                rows.append((int(parts[1]), parts[2].rstrip()))
            except ValueError:
                continue
    return sorted(rows, reverse=True)[:top]


def measure(runs: int, *, importtime: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiosk-startup-") as tmp:
        work = Path(tmp)
        with ReferenceBackend(work / "backend.db", host="127.0.0.1", port=0, dev=True) as backend:
            config = write_config(work, backend)
            ready = [time_to_ready(config, work)[0] for _ in range(runs)]
            baseline = [time_python_pass() for _ in range(runs)]
            imports: list[tuple[int, str]] = []
            if importtime:
                _, err = time_to_ready(config, work, ("-X", "importtime"))
                imports = slowest_imports(err)
    median, base = statistics.median(ready), statistics.median(baseline)
    return {
        "runs": runs,
        "ready_s": [round(r, 4) for r in ready],
        "median_s": round(median, 4),
        "first_s": round(ready[0], 4),
        "python_pass_median_s": round(base, 4),
        "ratio": round(median / base, 1),
        "target_s": TARGET_S,
        "ok": median <= TARGET_S,
        "slowest_imports": imports,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--importtime", action="store_true", help="show the slowest imports")
    args = parser.parse_args(argv)
    result = measure(args.runs, importtime=args.importtime)
    print(f"{'run':>4} {'to READY=1 s':>13}")
    for i, seconds in enumerate(cast(list[float], result["ready_s"]), 1):
        print(f"{i:4d} {seconds:13.3f}")
    print(
        f"median {result['median_s']:.3f} s (first {result['first_s']:.3f} s),"
        f" python -c pass {result['python_pass_median_s']:.3f} s,"
        f" ratio {result['ratio']}x; target <= {TARGET_S} s:"
        f" {'met' if result['ok'] else 'NOT met'}"
    )
    for micros, module in cast(list[tuple[int, str]], result["slowest_imports"]):
        print(f"  {micros / 1000:8.1f} ms  {module}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
