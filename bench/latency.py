"""Scan latency and outbox replay rate of the kiosk core, against the loopback reference backend.

    python bench/latency.py [--scans 1000] [--replay 1000] [--fsync-ms 0]
                            [--out docs/performance-latency.md]

One run, one machine. A kiosk ``Counter`` runs in this process with the field's
scan path: receipt text written to a real pseudo-terminal, read by
``hardware.serial_scanner.SerialScanner``, framed, queued to the engine, verified,
journaled (SQLite WAL, ``synchronous=FULL``, on the disk under --workdir), checked
at the reference backend over loopback HTTP, rendered to a 128x64 frame and shown
on luma's dummy device; LED and buzzer run on gpiozero's mock pins.

- first feedback: pty write -> the "scan" signal started AND the "checking" screen shown;
- final: pty write -> the result committed in the journal, rendered and shown (on_outcome);
- replay: N receipts accepted offline (backend away), then ``sync_once`` uploads them all.

Baselines from the same run: the bare pty transfer of the same text (write -> select and
read), a bare ``requests`` POST of a receipt check to the same backend, and the
bare sequential POST rate. Results go to --out as a markdown table.

``--fsync-ms N`` runs the measurement in a child process with the LD_PRELOAD shim of
``bench/fsync_delay.c`` (see ``bench/_fsync.py``): every fsync/fdatasync of the
journal's files takes N ms more, as on a Pi's SD card (20 ms is typical); the
reference backend's database is synced at full speed. The figures are named with
the added delay, so runs at 0 and 20 ms sit side by side in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import select
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import tty
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from _backend import BackendProcess  # noqa: E402
from _common import cpu_model  # noqa: E402
from _fsync import delay_under, rerun_with_delay  # noqa: E402
from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: E402
from luma.core.device import dummy  # noqa: E402

from hardware.display import Display  # noqa: E402
from hardware.serial_scanner import SerialScanner  # noqa: E402
from hardware.signals import Indicators  # noqa: E402
from kiosk.config import Config, parse_config  # noqa: E402
from kiosk.counter import Counter  # noqa: E402
from kiosk.flows.sync import sync_once  # noqa: E402
from kiosk.views import Checking, Outcome, View  # noqa: E402
from refbackend import DEMO_VENUE  # noqa: E402

WARMUP = 20
WAIT_S = 10.0
TARGET_FIRST_P99_MS = 10.0
TARGET_FINAL_P50_MS = 30.0  # at 20 ms per fsync: one durable commit plus the network
TARGET_FINAL_P99_MS = 60.0
TARGET_REPLAY_RATIO = 0.8  # of a bare keep-alive client's sequential POST rate, same run
RATE_BASELINE_POSTS = 300


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    baseline: str
    ratio: str
    ok: bool | None


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method, in the values' unit."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class Pty:
    """A pseudo-terminal standing in for the USB scanner; the slave is what the kiosk opens."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write(self, text: str) -> float:
        """Write one code with CR LF; returns the perf_counter time just before the write."""
        data = text.encode() + b"\r\n"
        at = time.perf_counter()
        os.write(self.master, data)
        return at

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class Probe:
    """Timestamps of what the customer perceives, for the scan in hand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.signal_at: float | None = None
        self.checking_at: float | None = None
        self.outcomes: queue.Queue[tuple[float, Outcome]] = queue.Queue()

    def reset(self) -> None:
        with self.lock:
            self.signal_at = self.checking_at = None

    def on_signal(self, kind: str) -> None:
        if kind == "scan":
            with self.lock:
                if self.signal_at is None:
                    self.signal_at = time.perf_counter()

    def on_view(self, view: View) -> None:
        if isinstance(view, Checking):
            with self.lock:
                if self.checking_at is None:
                    self.checking_at = time.perf_counter()

    def on_outcome(self, outcome: Outcome) -> None:
        self.outcomes.put((time.perf_counter(), outcome))


class TimedIndicators:
    """The real Indicators, noting when the "scan" pattern was started."""

    def __init__(self, inner: Indicators, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    def signal(self, kind: str) -> None:
        self._inner.signal(kind)
        self._probe.on_signal(kind)

    def close(self) -> None:
        self._inner.close()


def kiosk_config(workdir: Path, backend: BackendProcess, client: tuple[str, str]) -> Config:
    secret = workdir / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    return parse_config(
        {
            "device": {"id": "bench-1", "venue": DEMO_VENUE},
            "backend": {
                "url": backend.url,
                "client_id": client[0],
                "client_secret_file": str(secret),
                "issuer": backend.issuer,
                "connect_timeout": 1.0,
                "read_timeout": 5.0,
            },
            "scanner": {"source": "serial", "port": "unused", "repeat_window_scanner": 3.0},
            "display": {"driver": "none", "language": "fi", "result_seconds": 4.0},
            "signals": {"led_pin": 17, "buzzer_pin": 18},
            "journal": {"path": str(journal_dir(workdir) / "journal.db"), "min_free_mb": 0},
            "offline": {
                "max_amount_cents": 8000,
                "max_total_cents": 100_000_000,
                "max_count": 10_000,
            },
            "log": {"level": "warning"},
        }
    )


def journal_dir(workdir: Path) -> Path:
    """The journal's own directory: the one whose syncs --fsync-ms slows down."""
    return workdir / "journal"


class Bench:
    def __init__(self, workdir: Path, scans: int, replay: int) -> None:
        self.workdir = workdir
        self.scans = scans
        self.replay = replay
        self.backend = BackendProcess(workdir / "backend.db", rate_limit_per_s=1e6)

    def mint(self, amount_cents: int) -> str:
        """A fresh receipt token of the demo venue."""
        return str(self.backend.call("mint_receipt", DEMO_VENUE, amount_cents)[1])

    def run(self) -> dict[str, Any]:
        journal_dir(self.workdir).mkdir(exist_ok=True)
        delay_under(journal_dir(self.workdir))
        with self.backend:
            client = tuple(self.backend.call("create_client", DEMO_VENUE))
            cfg = kiosk_config(self.workdir, self.backend, client)
            base_pty = self.baseline_pty(200)
            base_post = self.baseline_post(client, 200)
            base_commit = self.baseline_commit(60)
            first, final, words = self.scan_latency(cfg)
            replay, base_rate = self.replay_rate(cfg, client)
        return {
            "first": first,
            "final": final,
            "words": words,
            "base_pty": base_pty,
            "base_post": base_post,
            "base_commit": base_commit,
            "replay": replay,
            "base_rate": base_rate,
        }

    # --- baselines ------------------------------------------------------------------------

    def baseline_commit(self, n: int) -> list[float]:
        """A bare durable SQLite commit (WAL, ``synchronous=FULL``) of one small row in the
        journal's directory: the one flush an online scan waits for, on this disk."""
        path = journal_dir(self.workdir) / "baseline.db"
        conn = sqlite3.connect(path, isolation_level=None)
        times = []
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (x TEXT)")
            for _ in range(n):
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?)", ("x" * 300,))
                conn.execute("COMMIT")
                times.append(time.perf_counter() - started)
        finally:
            conn.close()
        return times

    def baseline_pty(self, n: int) -> list[float]:
        """Bare transfer of a receipt's text through the pty: select + read until LF."""
        token = self.mint(1000)
        pty = Pty()
        fd = os.open(pty.path, os.O_RDWR | os.O_NOCTTY)
        times = []
        try:
            for _ in range(n):
                at = pty.write(token)
                line = b""
                while not line.endswith(b"\n"):
                    ready, _, _ = select.select([fd], [], [], 1.0)
                    if not ready:
                        raise SystemExit("the pty baseline read timed out")
                    line += os.read(fd, 4096)
                times.append(time.perf_counter() - at)
        finally:
            os.close(fd)
            pty.close()
        return times

    def baseline_post(self, client: tuple[str, str], n: int) -> list[float]:
        """Bare requests POST of a receipt check (kept-alive session, fresh key and receipt)."""
        session = requests.Session()
        url = self.backend.url
        token = session.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=client,
            timeout=(2, 10),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        receipts = [self.mint(1000) for _ in range(n + 5)]
        times = []
        for i, receipt in enumerate(receipts):
            body = {
                "token": receipt,
                "venue": DEMO_VENUE,
                "device": "baseline",
                "scanned_at": "2026-11-26T10:00:00Z",
                "offline": False,
            }
            started = time.perf_counter()
            resp = session.post(
                f"{url}/v1/receipts/check",
                json=body,
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                timeout=(2, 10),
            )
            elapsed = time.perf_counter() - started
            assert resp.status_code == 200, resp.text
            if i >= 5:
                times.append(elapsed)
        session.close()
        return times

    # --- the kiosk ------------------------------------------------------------------------

    def _counter(self, cfg: Config, probe: Probe) -> tuple[Counter, Any, Display]:
        factory = MockFactory(pin_class=MockPWMPin)
        indicators = TimedIndicators(Indicators(cfg.signals, pin_factory=factory), probe)
        display = Display(device=dummy(width=128, height=64, mode="1"))
        counter = Counter(
            cfg,
            display=display,
            indicators=indicators,
            has_buttons=False,
            clock_synced=lambda: True,
            on_outcome=probe.on_outcome,
            on_view=probe.on_view,
            sync_interval=30.0,
        )
        return counter, indicators, display

    def scan_latency(self, cfg: Config) -> tuple[list[float], list[float], dict[str, int]]:
        probe = Probe()
        counter, indicators, display = self._counter(cfg, probe)
        pty = Pty()
        scanner = SerialScanner(pty.path, baud=9600, line_timeout=0.5, on_event=counter.submit)
        total = WARMUP + self.scans
        receipts = [self.mint(500 + i) for i in range(total)]
        first: list[float] = []
        final: list[float] = []
        words: dict[str, int] = {}
        counter.start()
        scanner.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while not scanner.connected:
                if time.monotonic() > deadline:
                    raise SystemExit("the serial scanner never opened the pty")
                time.sleep(0.005)
            for i, receipt in enumerate(receipts):
                probe.reset()
                at = pty.write(receipt)
                done_at, outcome = probe.outcomes.get(timeout=WAIT_S)
                words[outcome.word] = words.get(outcome.word, 0) + 1
                with probe.lock:
                    sig, chk = probe.signal_at, probe.checking_at
                if sig is None or chk is None:
                    raise SystemExit(f"scan {i}: no scan signal or checking screen")
                if i >= WARMUP:
                    first.append(max(sig, chk) - at)
                    final.append(done_at - at)
        finally:
            scanner.stop()
            counter.stop()
            indicators.close()
            display.close()
            pty.close()
        return first, final, words

    def replay_rate(
        self, cfg: Config, client: tuple[str, str]
    ) -> tuple[tuple[int, float, int], float]:
        """((uploaded, seconds, pending before) for ``sync_once`` over N offline-accepted
        checks, the bare sequential POST rate measured right before and after it)."""
        probe = Probe()
        counter, indicators, display = self._counter(cfg, probe)
        receipts = [self.mint(700) for _ in range(self.replay)]
        counter.start()
        try:
            self.backend.call("pause")
            for receipt in receipts:
                counter.submit(_scan(receipt))
                _, outcome = probe.outcomes.get(timeout=WAIT_S)
                if outcome.word != "checked_offline":
                    raise SystemExit(f"offline acceptance failed: {outcome.word} {outcome.reason}")
        finally:
            counter.stop()
            indicators.close()
            display.close()
        self.backend.call("resume")
        before = self.baseline_post(client, RATE_BASELINE_POSTS)
        ctx = counter.open_context()  # what `kiosk sync` builds: its own journal and client
        try:
            ctx.keys.load(ctx.journal)
            pending = ctx.journal.pending_count()
            started = time.perf_counter()
            report = sync_once(ctx)
            elapsed = time.perf_counter() - started
        finally:
            ctx.journal.close()
            ctx.client.close()
        if report.remaining or report.error:
            raise SystemExit(f"replay incomplete: {report}")
        after = self.baseline_post(client, RATE_BASELINE_POSTS)
        # The machine may be shared: the rate around the replay, not one taken minutes apart.
        base_rate = 2.0 / (statistics.mean(before) + statistics.mean(after))
        return (report.uploaded, elapsed, pending), base_rate


def _scan(text: str) -> Any:
    from kiosk.events import Scan

    return Scan(text, "serial", time.monotonic())


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.machine()}"


def filesystem_of(path: Path) -> str:
    """The mount (device and type) holding *path*, from /proc/mounts."""
    best, found = "", "unknown"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return found
    target = str(path.resolve())
    for line in lines:
        dev, mnt, fstype = line.split()[:3]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, found = mnt, f"{fstype} on {dev}"
    return found


def rows(result: dict[str, Any], host: str, fsync_ms: int = 0) -> list[Row]:
    first, final = result["first"], result["final"]
    base_pty, base_post, base_commit = (
        result["base_pty"],
        result["base_post"],
        result["base_commit"],
    )
    uploaded, seconds, pending = result["replay"]
    rate = uploaded / seconds
    base_rate = result["base_rate"]
    at = f", fsync +{fsync_ms} ms"
    out = []
    for name, values, base, targets in (
        ("first feedback (beep + checking screen)", first, base_pty, (None, TARGET_FIRST_P99_MS)),
        (
            "final result committed and shown",
            final,
            base_post,
            (TARGET_FINAL_P50_MS, TARGET_FINAL_P99_MS),
        ),
    ):
        for q, target in zip((0.5, 0.99), targets, strict=True):
            measured = pct(values, q)
            baseline = pct(base, q)
            if base is base_pty:
                said = f"bare pty transfer {ms(baseline)}"
            else:  # the floor: one durable commit, then the request's round trip
                commit = pct(base_commit, q)
                said = (
                    f"bare durable commit {ms(commit)} + bare POST check {ms(baseline)}"
                    f" = {ms(commit + baseline)}"
                )
                baseline += commit
            out.append(
                Row(
                    figure=f"{name}, p{int(q * 100)}{at}",
                    target="-" if target is None else f"<= {target:.0f} ms",
                    measured=ms(measured),
                    baseline=said,
                    ratio=f"{measured / baseline:.1f}x",
                    ok=None if target is None else measured * 1000 <= target,
                )
            )
    out.append(
        Row(
            figure=f"outbox replay, {uploaded} offline checks by sync_once{at}",
            target=f">= {TARGET_REPLAY_RATIO:.1f}x the bare rate",
            measured=f"{rate:.0f} checks/s ({seconds:.2f} s for {pending})",
            baseline=f"bare keep-alive sequential POST {base_rate:.0f} checks/s",
            ratio=f"{rate / base_rate:.2f}x",
            ok=rate / base_rate >= TARGET_REPLAY_RATIO,
        )
    )
    return out


def write_markdown(
    path: Path, table: list[Row], result: dict[str, Any], info: str, fsync_ms: int = 0
) -> None:
    words = ", ".join(f"{w} {n}" for w, n in sorted(result["words"].items()))
    first, final = result["first"], result["final"]
    lines = [
        f"## Scan latency and outbox replay, fsync +{fsync_ms} ms",
        "",
        f"Measured by `python bench/latency.py --fsync-ms {fsync_ms}` on"
        f" {date.today().isoformat()} ({info}).",
        f"{len(first)} receipt scans after {WARMUP} warm-up scans; every figure and baseline"
        " comes from this one run.",
        "",
        "| figure | target | measured | baseline | ratio | met | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    short = info.split(";")[0]
    for r in table:
        met = "-" if r.ok is None else ("yes" if r.ok else "NO")
        lines.append(
            f"| {r.figure} | {r.target} | {r.measured} | {r.baseline} | {r.ratio} | {met}"
            f" | {short} |"
        )
    lines += [
        "",
        f"- Scan outcomes: {words}. Max first feedback {ms(max(first))}, max final"
        f" {ms(max(final))}.",
        "- Path measured: text written to a real pty (CR LF) -> `SerialScanner` (pyserial) ->"
        " `Counter.submit` -> engine: scan signal (gpiozero mock pins) and `Checking` screen"
        " rendered and shown (luma dummy device) -> JWS verified -> request journaled (SQLite"
        " WAL, synchronous=FULL) -> POST /v1/receipts/check over loopback -> answer settled"
        " and outcome recorded -> `Result` screen rendered and shown -> `on_outcome`.",
        "- First feedback is the later of the `scan` signal start and the `Checking` screen"
        " handed to the display; its baseline is the same text through a pty to a bare"
        " select/read loop. Final result's baseline is the floor of an exactly-once scan on"
        " this machine: one bare durable SQLite commit (WAL, `synchronous=FULL`) in the"
        " journal's directory plus one bare `requests` POST of a check (kept-alive session)"
        " to the same backend, each at the same percentile, measured in this run.",
        "- Replay: the backend was paused, the receipts scanned (accepted offline, journaled),"
        " the counter stopped, the backend resumed, then one `sync_once` (what `kiosk sync`"
        " runs) uploaded every entry with its original key, settling each in the journal.",
        "- The reference backend runs in a process of its own (`bench/_backend.py`) with its"
        " rate limit raised for the run; it shares the machine's cores with the kiosk. The"
        " replay's baseline is the bare sequential POST rate measured right before and right"
        " after the replay (their mean), so that a shared machine's load drifts into both.",
        "- Flushes (fsync of the journal's log): 1 per online scan, the request marked as"
        " attempted, before its first byte leaves; the answer, outcome and last-sync time"
        " are committed together without waiting for the disk (`synchronous=NORMAL` for that"
        " commit) and flushed on a thread of their own right after the result is shown."
        " Replay sends windows of up to 64 requests, 4 in flight on kept-alive connections:"
        " one durable commit per window, made while it is in flight, writes the answers of the"
        " window before and marks the next window as attempted (the round's end flushes the"
        " last answers), so the next window leaves as soon as this one is answered."
        " On a Pi's SD card each flush costs more than on this disk; run the bench there"
        " with `--workdir` on the journal's file system.",
        "- `--fsync-ms N` adds N ms to every fsync/fdatasync of the journal's files only"
        " (LD_PRELOAD shim `bench/fsync_delay.c`, matched by the descriptor's path under the"
        " journal's directory); the reference backend's database and the baselines are"
        f" untouched. This run: +{fsync_ms} ms.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=1000)
    parser.add_argument("--replay", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance-latency.md")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the journal lives (default: a temp dir)"
    )
    parser.add_argument(
        "--fsync-ms",
        type=int,
        default=0,
        help="extra milliseconds per fsync of the journal's files (LD_PRELOAD shim; 20 = SD card)",
    )
    args = parser.parse_args(argv)
    status = rerun_with_delay(args.fsync_ms, __file__, sys.argv[1:] if argv is None else argv)
    if status is not None:
        return status
    with tempfile.TemporaryDirectory(prefix="kiosk-latency-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        result = Bench(workdir, args.scans, args.replay).run()
        info = (
            f"{machine()}; Python {platform.python_version()}; journal on {filesystem_of(workdir)}"
            f", fsync +{args.fsync_ms} ms; load average {load_average()}"
        )
    table = rows(result, info, args.fsync_ms)
    write_markdown(args.out, table, result, info, args.fsync_ms)
    for r in table:
        met = "" if r.ok is None else ("  ok" if r.ok else "  MISSED")
        print(f"{r.figure}: {r.measured} (target {r.target}; {r.baseline}; {r.ratio}){met}")
    print(f"written to {args.out}")
    return 0 if all(r.ok is not False for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
