"""The device test's ``memory-modes`` step: ``kiosk run`` per mode on the Pi's architecture.

As bench/memory.py runs them on x86-64, each for 40 s beside kiosk.service with its
own journal: a serial scanner kiosk (a pseudo-terminal in the guest as its port, a
fresh receipt every 2 s), an HID scanner kiosk (its event device absent: the kiosk
retries it) and a camera kiosk fed 640x480 frames at 10 fps (``source = "replay"``)
with LED, buzzer and buttons on gpiozero's mock pins. Peak RSS, PSS and USS come from
/proc/PID/smaps_rollup. The figures are printed and written as JSON (``--figures``)
for bench/run_all.py, which reports them beside the x86-64 ones.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODES = ("serial", "hid", "camera")
SECONDS = 40
SCAN_EVERY_S = 2
FEED_PAUSE_S = 10

# The serial kiosk's scanner: a pseudo-terminal whose other end is linked at argv[1];
# after argv[4] s for the kiosk to start and open it, one receipt of argv[2] every argv[3] s.
FEED = """\
import os, signal, sys, time
master, slave = os.openpty()
link, tokens = sys.argv[1], open(sys.argv[2]).read().split()
every, pause = float(sys.argv[3]), float(sys.argv[4])
if os.path.lexists(link):
    os.unlink(link)
os.symlink(os.ttyname(slave), link)
time.sleep(pause)
for token in tokens:
    os.write(master, token.encode() + b"\\r\\n")
    time.sleep(every)
signal.pause()  # the port stays open until the run ends and kills the feed
"""

# Runs kiosk run in the guest for {seconds} s with {dir}/kiosk.toml and prints its peaks.
SAMPLE = """
cd {dir} && {feed}
sudo -u kiosk env GPIOZERO_PIN_FACTORY=mock \\
    /opt/kiosk/current/bin/kiosk run --config {dir}/kiosk.toml >{dir}/run.log 2>&1 &
pid=$!; sleep 2; pid=$(pgrep -P $pid -f 'kiosk run' || echo $pid)
rss=0 pss=0 uss=0 alive=no
for _ in $(seq {seconds}); do
    [ -r /proc/$pid/smaps_rollup ] || break
    set -- $(awk '/^Rss:/ {{r=$2}} /^Pss:/ {{p=$2}} /^Private_(Clean|Dirty):/ {{u+=$2}}
        END {{print r+0, p+0, u+0}}' /proc/$pid/smaps_rollup)
    [ "$1" -gt "$rss" ] && rss=$1; [ "$2" -gt "$pss" ] && pss=$2; [ "$3" -gt "$uss" ] && uss=$3
    sleep 1
done
[ -d /proc/$pid ] && alive=yes
kill -INT $pid 2>/dev/null; sleep 3; kill -KILL $pid 2>/dev/null
pkill -u kiosk -f '{dir}/feed.py' 2>/dev/null
awk -v r=$rss -v p=$pss -v u=$uss -v a=$alive \\
    'BEGIN {{printf "rss_mb=%.1f pss_mb=%.1f uss_mb=%.1f alive=%s\\n", r/1024, p/1024, u/1024, a}}'
tail -n 5 {dir}/run.log >&2
"""


def mode_toml(vm_toml: str, mode: str, state: str, frames: str) -> str:
    """The VM's kiosk.toml for a second ``kiosk run`` in *mode* (one of :data:`MODES`)
    keeping its journal and metrics under *state*."""
    head = vm_toml.split("[scanner]", 1)[0]
    pins = (-1, -1, -1, -1, -1)
    if mode == "camera":
        scanner = f'source = "replay"\n\n[camera]\nfps = 10\nreplay_dir = "{frames}"\n'
        pins = (17, 18, 5, 6, 13)
    elif mode == "serial":
        scanner = f'source = "serial"\nport = "{state}/scanner"\nline_timeout = 0.2\n'
    else:
        scanner = 'source = "hid"\nhid_device = "/dev/input/by-id/no-scanner-here"\n'
    return (
        f'{head}[scanner]\n{scanner}\n[display]\ndriver = "none"\n\n[signals]\n'
        f"led_pin = {pins[0]}\nbuzzer_pin = {pins[1]}\nbutton_up = {pins[2]}\n"
        f"button_down = {pins[3]}\nbutton_ok = {pins[4]}\n\n[journal]\n"
        f'path = "{state}/journal.db"\nmin_free_mb = 0\n\n[metrics]\n'
        f'textfile = "{state}/kiosk.prom"\n'
    )


def sample_script(state: str, mode: str) -> str:
    """The guest's shell script for one mode's run (the serial one starts its feed)."""
    feed = (
        f"sudo -u kiosk python3 {state}/feed.py {state}/scanner {state}/tokens"
        f" {SCAN_EVERY_S} {FEED_PAUSE_S} >{state}/feed.log 2>&1 &"
        if mode == "serial"
        else ":"
    )
    return SAMPLE.format(dir=state, feed=feed, seconds=SECONDS)


def run(test: Any, figures_out: Path | None = None) -> None:
    """The step on *test* (a DeviceTest): every mode, one PASS/FAIL line, the figures."""
    sys.path.insert(0, str(ROOT / "bench"))
    from memory import BUDGET_MB, frames  # x86-64's budgets: arm64 is reported beside them

    vm, r, work = test.vm, test.r, test.work
    camera_tx, token = test.backend.mint_receipt(4400)
    serial = [
        test.backend.mint_receipt(1000 + i)
        for i in range((SECONDS - FEED_PAUSE_S - 2) // SCAN_EVERY_S)
    ]
    base = "/var/tmp/kiosk-modes"
    bundle = work / "modes"
    vm_toml = (work / "kiosk.toml").read_text()
    for folder in ("frames", *MODES):
        (bundle / folder).mkdir(parents=True, exist_ok=True)
    frames(bundle / "frames", token)
    for mode in MODES:
        (bundle / mode / "kiosk.toml").write_text(
            mode_toml(vm_toml, mode, f"{base}/{mode}", f"{base}/frames")
        )
    (bundle / "serial" / "feed.py").write_text(FEED)
    (bundle / "serial" / "tokens").write_text("\n".join(t for _, t in serial) + "\n")
    tar = work / "modes.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(bundle.iterdir()):
            t.add(entry, arcname=entry.name)
    put = subprocess.run(
        [*vm.ssh_argv(), f"sudo install -d -o kiosk {base} && sudo -u kiosk tar x -C {base}"],
        input=tar.read_bytes(), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if put.returncode != 0:
        raise RuntimeError(f"copying the frames and configurations: {put.stderr.decode()[-300:]}")
    figures: dict[str, dict[str, str]] = {}
    for mode in MODES:
        out = vm.root(sample_script(f"{base}/{mode}", mode), timeout=SECONDS + 120)
        figures[mode] = dict(kv.split("=", 1) for kv in out.stdout.split() if "=" in kv)
        r.info(f"{mode} kiosk on {test.arch}: {figures[mode]} {out.stderr.strip()[-300:]}")
    serial_txs = {tx for tx, _ in serial}
    checked = test.backend.checked({camera_tx} | serial_txs, timeout=30)
    statuses = {tx: [i["status"] for i in checked.get(tx, [])] for tx in serial_txs}
    serial_checked = sum(1 for s in statuses.values() if s == ["checked"])
    camera = [i["status"] for i in checked.get(camera_tx, [])]
    alive = all(float(f.get("rss_mb", 0)) > 0 and f.get("alive") == "yes" for f in figures.values())
    # The last receipt or two may still be in flight when the serial kiosk is stopped.
    ok = alive and camera == ["checked"] and serial_checked >= len(serial) - 3
    r.line(
        ok and all(len(s) <= 1 for s in statuses.values()),
        f"kiosk run per mode on {test.arch}: peak RSS/PSS/USS over {SECONDS} s (the serial"
        " kiosk checked its receipts once each, the camera kiosk read the receipt in its frames)",
        "; ".join(
            f"{m} RSS {f.get('rss_mb')} MB, PSS {f.get('pss_mb')} MB, USS {f.get('uss_mb')} MB"
            for m, f in figures.items()
        )
        + f"; serial receipts checked {serial_checked} of {len(serial)}; camera receipt {camera}",
    )
    result = {
        "date": date.today().isoformat(),
        "arch": test.arch,
        "guest_python": vm.ssh(
            "python3 -c 'import platform; print(platform.python_version())'"
        ).stdout.strip(),
        "host": platform.machine(),
        "seconds": SECONDS,
        "modes": [
            {
                "mode": m,
                "rss_peak_mb": float(f.get("rss_mb", 0)),
                "pss_peak_mb": float(f.get("pss_mb", 0)),
                "uss_peak_mb": float(f.get("uss_mb", 0)),
                "x86_64_budget_mb": BUDGET_MB[m],
                "alive": f.get("alive") == "yes",
            }
            for m, f in figures.items()
        ],
        "serial_receipts": {"sent": len(serial), "checked_once": serial_checked},
        "camera_receipt": camera,
    }
    text = json.dumps(result, indent=2) + "\n"
    (work / "memory-modes.json").write_text(text)
    if figures_out is not None and ok:
        figures_out.write_text(text)
        r.info(f"memory figures written to {figures_out}")
