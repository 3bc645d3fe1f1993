"""Soak: a studio day compressed, camera at 10 fps, outages and restarts; resources over time.

    python bench/soak.py [--duration 180] [--days 1] [--day-hours 8] [--fsync-ms 0] [--json FILE]

One process runs the reference backend (loopback) and a kiosk ``Counter`` fed by
``CameraReader`` over a replay of 640x480 frames at 10 fps (drawn as they are due): an empty
counter (fresh sensor noise every frame) with, every few seconds, a phone
showing a QR code for about a second — real receipts minted by the backend,
some payment codes, some foreign QR codes. The backend goes away now and then
(``pause``/``resume``) and the kiosk is restarted (the counter stopped, a new
one started on the same journal; what the stopped one leaves in reference cycles
is collected, as a process exit would free it). The simulated ``--day-hours`` are compressed
into ``--duration`` wall seconds; frames stay at real-time 10 fps, so the
camera path does a full day's per-second work.

Every few seconds it samples RSS, open file descriptors, threads and the
journal's size of the kiosk process. The backend runs in a process of its own, and
so does the drawing of the frames (QR codes, phones, sensor noise: the benchmark's
work, not the kiosk's); the kiosk's process receives each frame's pixels as a
camera delivers them. It prints a table, and checks: RSS growth after warm-up <= 1 MB
per simulated day, no more file descriptors (+2 for a kept-alive connection) or
threads after warm-up than before it, every receipt the kiosk accepted is checked
at the backend in the end (none lost).

Growth per day is the least-squares slope of RSS over the samples after warm-up,
times a day's length: a line through every sample, not the highest sample minus
the first, so the heap's ups and downs (freed pages given back, taken again) do
not read as growth. Warm-up is the first day when the soak runs several (the
kiosk's first day fills what is bounded and then stays: SQLite's page caches,
the decoder's buffers, the interpreter's caches; its rise is reported apart),
the first quarter of a single day otherwise.
``--json`` writes the figures for ``bench/run_all.py``. ``--fsync-ms N`` runs the
soak in a child process under the LD_PRELOAD shim of ``bench/fsync_delay.c``: every
fsync/fdatasync of the journal's files takes N ms more (the backend's are untouched).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter as Tally
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _backend import BackendProcess
from _fsync import delay_under, rerun_with_delay

from hardware.camera import CameraReader, Frame
from hardware.display import Display, make_device
from kiosk.config import Config, parse_config
from kiosk.counter import Counter
from kiosk.decode import make_decoder
from kiosk.journal import Journal
from kiosk.libc import limit_malloc_arenas, return_freed_memory
from kiosk.views import Outcome

FPS = 10.0
WARMUP_FRACTION = 0.25
RSS_GROWTH_LIMIT_MB = 1.0  # per simulated studio day
RSS_BUDGET_MB = 80.0  # the camera kiosk's budget (bench/memory.py)


@dataclass
class Sample:
    t: float
    sim_hour: float
    phase: str
    rss_mb: float
    fds: int
    threads: int
    journal_kb: float
    outcomes: int


@dataclass
class SoakResult:
    duration_s: float  # one simulated day, wall seconds
    days: int
    day_hours: float
    frames: int
    codes_shown: int
    outcomes: dict[str, int]
    restarts: int
    outages: int
    receipts_accepted: int
    receipts_lost: int
    rss_start_mb: float
    rss_warm_mb: float
    rss_end_mb: float
    rss_max_mb: float
    rss_growth_mb: float
    rss_growth_per_day_mb: float  # slope of RSS after warm-up, times a day's wall seconds
    fds_range: tuple[int, int]
    threads_range: tuple[int, int]
    fds_growth: int  # highest after warm-up minus highest before
    threads_growth: int
    journal_kb: float
    frames_decoded: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.rss_growth_per_day_mb <= RSS_GROWTH_LIMIT_MB
            and self.rss_max_mb <= RSS_BUDGET_MB
            and self.fds_growth <= 2
            and self.threads_growth <= 0
            and self.receipts_lost == 0
        )


def rss_slope(samples: list[Sample]) -> float:
    """MB per wall second: the least-squares line through the samples' RSS."""
    if len(samples) < 2:
        return 0.0
    return statistics.linear_regression([s.t for s in samples], [s.rss_mb for s in samples]).slope


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def native_threads() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


def kiosk_config(work: Path, backend: BackendProcess, client: tuple[str, str]) -> Config:
    secret = work / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    return parse_config(
        {
            "device": {"id": "soak-1", "venue": backend.venue, "default_service": "classic-60"},
            "backend": {
                "url": backend.url,
                "client_id": client[0],
                "client_secret_file": str(secret),
                "issuer": backend.issuer,
                "connect_timeout": 0.5,
                "read_timeout": 2.0,
            },
            "scanner": {"source": "camera"},
            "display": {"driver": "none", "result_seconds": 2.0},
            "signals": {
                "led_pin": -1,
                "buzzer_pin": -1,
                "button_up": -1,
                "button_down": -1,
                "button_ok": -1,
            },
            "journal": {"path": str(work / "journal" / "journal.db"), "min_free_mb": 0},
            "offline": {"max_count": 50, "max_total_cents": 500_000},
        }
    )


class Timeline:
    """Which frame the camera sees at each tick: empty counter, or a phone with a code.

    Frames are drawn when the camera reaches them, not stored: a day's worth of
    phone frames held in this process would count in the RSS measured for the kiosk.
    Only a few empty-counter frames and the phone frame on show are kept.
    """

    EMPTY_FRAMES = 4

    def __init__(self, texts: list[str], *, duration: float, code_every: float) -> None:
        from _common import counter_scene

        self.total = int(duration * FPS)
        self.empty = [counter_scene(seed) for seed in range(self.EMPTY_FRAMES)]
        self.texts: list[str] = []
        self.starts: list[int] = []
        hold = int(FPS)  # a phone is held up for about a second
        for k, text in enumerate(texts):
            start = int((k + 0.5) * code_every * FPS)
            if start + hold >= self.total:
                break
            self.texts.append(text)
            self.starts.append(start)
        self._hold = hold
        self._shown: tuple[int, np.ndarray] | None = None
        self._lock = threading.Lock()

    def frame(self, i: int) -> np.ndarray:
        """The frame at tick *i*."""
        for k, start in enumerate(self.starts):
            if start <= i < start + self._hold:
                return self._phone(k)
        return self.empty[i % len(self.empty)]

    def _phone(self, k: int) -> np.ndarray:
        with self._lock:
            if self._shown is None or self._shown[0] != k:
                from _common import phone_frame

                angle = (k % 7) * 4.0 - 12.0
                self._shown = (k, phone_frame(self.texts[k], seed=k, scale=4, angle=angle))
            return self._shown[1]


class FrameProcess:
    """A timeline drawn in a process of its own; ``frame(i)`` fetches tick *i*'s pixels.

    Drawing QR codes and phones is the benchmark's work: done in the kiosk's
    process it would count in the RSS measured for the kiosk. Here the kiosk's
    process only receives the pixels, as it does from a camera.
    """

    def __init__(self, texts: list[str], *, duration: float, code_every: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_draw_frames, args=(texts, duration, code_every, child), daemon=True
        )
        self._proc.start()
        self.total, self.codes = self._conn.recv()
        self._lock = threading.Lock()

    def frame(self, i: int) -> np.ndarray:
        with self._lock:
            self._conn.send(i)
            data = self._conn.recv_bytes()
        return np.frombuffer(data, dtype=np.uint8).reshape(480, 640)

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(10.0)


def _draw_frames(texts: list[str], duration: float, code_every: float, conn: Any) -> None:
    timeline = Timeline(texts, duration=duration, code_every=code_every)
    conn.send((timeline.total, len(timeline.starts)))
    while (i := conn.recv()) is not None:
        conn.send_bytes(np.ascontiguousarray(timeline.frame(i)).tobytes())


class TimelineSource:
    """Ticks *first* to *last* of a timeline as a live camera at FPS (a FrameSource).

    Like a real sensor, ``read`` returns the newest frame, skipping ticks that went
    by while the reader was busy; after *last* it returns None, like a hung camera.
    """

    def __init__(self, timeline: FrameProcess, first: int, last: int) -> None:
        self._timeline = timeline
        self._first, self._last = first, last
        self._start: float | None = None
        self._next = first
        self._closed = threading.Event()

    def read(self, timeout: float) -> Frame | None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        deadline = now + max(0.0, timeout)
        while not self._closed.is_set():
            current = self._first + int((now - self._start) * FPS)
            if current >= self._last:
                self._closed.wait(max(0.0, deadline - now))
                return None
            if current >= self._next:
                self._next = current + 1
                return Frame(pixels=self._timeline.frame(current), seq=current, at=now)
            due = self._start + (self._next - self._first) / FPS
            if due >= deadline:
                self._closed.wait(max(0.0, deadline - now))
                return None
            if self._closed.wait(max(0.0, due - now)):
                return None
            now = time.monotonic()
        return None

    def close(self) -> None:
        self._closed.set()


class Session:
    """One kiosk run: counter + camera reader over a slice of the timeline."""

    def __init__(self, cfg: Config, source: TimelineSource, on_outcome: Any) -> None:
        self.display = Display(device=make_device(cfg.display))
        self.counter = Counter(
            cfg,
            display=self.display,
            indicators=_NoSignals(),
            has_buttons=False,
            clock_synced=lambda: True,
            on_outcome=on_outcome,
            sync_interval=5.0,
        )
        self.counter.start()
        self.source = source
        self.reader = CameraReader(self.source, make_decoder("zxing"), self.counter.submit)
        self.reader.start()
        return_freed_memory()  # as `kiosk run` does once it is up

    def stop(self) -> int:
        self.reader.stop(5.0)
        self.source.close()
        self.counter.stop()
        self.display.close()
        return self.reader.frames_decoded


class _NoSignals:
    """No LED or buzzer fitted (all pins -1)."""

    def signal(self, kind: str) -> None:
        pass

    def close(self) -> None:
        pass


def run_soak(
    duration: float,
    day_hours: float,
    *,
    days: int = 1,
    code_every: float = 3.0,
    outage_every: float = 60.0,
    outage_s: float = 12.0,
    restart_every: float = 75.0,
    sample_every: float = 5.0,
    verbose: bool = True,
) -> SoakResult:
    day_s, duration = duration, duration * days
    work = Path(tempfile.mkdtemp(prefix="kiosk-soak-"))
    logging.basicConfig(
        filename=work / "soak.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    (work / "journal").mkdir()
    delay_under(work / "journal")
    backend = BackendProcess(work / "backend.db")
    try:
        cfg = kiosk_config(work, backend, backend.call("create_client", backend.venue))
        texts, receipts = [], {}
        for k in range(int(duration / code_every) + 2):
            if k % 10 == 7:
                texts.append(backend.call("mint_paycode", 100_000, "massage", 86_400)["token"])
            elif k % 10 == 9:
                texts.append(f"https://example.com/menu?table={k}")  # someone else's QR
            else:
                tx, token = backend.call("mint_receipt", backend.venue, 1000 + 50 * (k % 40))
                receipts[tx] = token
                texts.append(token)
        timeline = FrameProcess(texts, duration=duration, code_every=code_every)
        outcomes: list[Outcome] = []
        lock = threading.Lock()

        def on_outcome(outcome: Outcome) -> None:
            with lock:
                outcomes.append(outcome)

        samples: list[Sample] = []
        restarts = outages = decoded = 0
        t0 = time.monotonic()
        frame_at = 0
        next_restart = restart_every
        next_outage, outage_end = outage_every / 2, None
        next_sample = 0.0
        boundary = min(int(next_restart * FPS), timeline.total)
        session = Session(cfg, TimelineSource(timeline, 0, boundary), on_outcome)
        phase = "online"
        while True:
            now = time.monotonic() - t0
            if now >= duration:
                break
            if outage_end is None and now >= next_outage:
                backend.call("pause")
                outages += 1
                outage_end, phase = now + outage_s, "outage"
            elif outage_end is not None and now >= outage_end:
                backend.call("resume")
                outage_end, next_outage, phase = None, now + outage_every - outage_s, "online"
            if now >= next_restart:
                decoded += session.stop()
                # A kiosk restarts as a new process: what the stopped counter leaves in
                # reference cycles (threads, sessions, a failed request's traceback holding
                # its connection) is gone with it. Collected here, so that it is not
                # counted as the next run's growth.
                gc.collect()
                restarts += 1
                frame_at = int(now * FPS)
                next_restart = now + restart_every
                boundary = min(int(next_restart * FPS), timeline.total)
                source = TimelineSource(timeline, frame_at, max(boundary, frame_at + 1))
                session = Session(cfg, source, on_outcome)
            if now >= next_sample:
                samples.append(_sample(now, day_s, day_hours, phase, cfg, len(outcomes)))
                if verbose:
                    _print_row(samples[-1], first=len(samples) == 1)
                next_sample += sample_every
            time.sleep(0.05)
        if outage_end is not None:
            backend.call("resume")
        _wait_synced(cfg, session)
        samples.append(_sample(time.monotonic() - t0, day_s, day_hours, "end", cfg, len(outcomes)))
        if verbose:
            _print_row(samples[-1], first=False)
        decoded += session.stop()
        timeline.close()
        accepted = {o.tx for o in outcomes if o.word in ("checked", "checked_offline") and o.tx}
        at_backend = _checked_at_backend(cfg)
    finally:
        backend.close()
        for handler in logging.root.handlers[:]:
            logging.root.removeHandler(handler)
            handler.close()
        shutil.rmtree(work, ignore_errors=True)
    return _summarise(
        samples,
        duration=day_s,
        days=days,
        day_hours=day_hours,
        frames=timeline.total,
        codes=timeline.codes,
        outcomes=Tally(o.word for o in outcomes),
        restarts=restarts,
        outages=outages,
        accepted=len(accepted),
        lost=len(accepted - at_backend),
        decoded=decoded,
    )


def _sample(now: float, day_s: float, hours: float, phase: str, cfg: Config, n: int) -> Sample:
    path = Path(cfg.journal.path)
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return Sample(
        t=round(now, 1),
        sim_hour=round(now / day_s * hours, 2),
        phase=phase,
        rss_mb=round(rss_mb(), 2),
        fds=open_fds(),
        threads=native_threads(),
        journal_kb=round(size / 1024, 1),
        outcomes=n,
    )


def _print_row(s: Sample, *, first: bool) -> None:
    if first:
        print(f"{'t s':>6} {'hour':>5} {'phase':<7} {'RSS MB':>7} {'fds':>4} {'thr':>4} "
              f"{'journal KB':>10} {'outcomes':>8}")  # fmt: skip
    print(f"{s.t:6.1f} {s.sim_hour:5.2f} {s.phase:<7} {s.rss_mb:7.2f} {s.fds:4d} {s.threads:4d} "
          f"{s.journal_kb:10.1f} {s.outcomes:8d}", flush=True)  # fmt: skip


def _wait_synced(cfg: Config, session: Session, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with Journal.open(cfg.journal.path) as journal:
        while journal.pending_count() and time.monotonic() < deadline:
            session.counter.sync.wake()
            time.sleep(0.2)


def _checked_at_backend(cfg: Config) -> set[str]:
    from kiosk.backend.client import BackendClient

    done: set[str] = set()
    with BackendClient.from_config(cfg) as client:
        cursor = None
        while True:
            page = client.history(cfg.device.venue, limit=500, cursor=cursor)
            done |= {i.tx for i in page.items if i.kind == "receipt" and i.status == "checked"}
            if not page.next:
                return done
            cursor = page.next


def _summarise(samples: list[Sample], **kw: Any) -> SoakResult:
    day_s, days = kw["duration"], kw["days"]
    warm_at = day_s if days > 1 else day_s * WARMUP_FRACTION
    after = [s for s in samples if s.t >= warm_at] or samples
    before = [s for s in samples if s.t < warm_at] or samples[:1]
    warm = statistics.median(s.rss_mb for s in after[:3])
    end = statistics.median(s.rss_mb for s in after[-3:])
    return SoakResult(
        duration_s=day_s,
        days=days,
        day_hours=kw["day_hours"],
        frames=kw["frames"],
        codes_shown=kw["codes"],
        outcomes=dict(kw["outcomes"]),
        restarts=kw["restarts"],
        outages=kw["outages"],
        receipts_accepted=kw["accepted"],
        receipts_lost=kw["lost"],
        rss_start_mb=samples[0].rss_mb,
        rss_warm_mb=round(warm, 2),
        rss_end_mb=round(end, 2),
        rss_max_mb=max(s.rss_mb for s in after),
        rss_growth_mb=round(max(s.rss_mb for s in after) - warm, 2),
        rss_growth_per_day_mb=round(rss_slope(after) * day_s, 2),
        fds_range=(min(s.fds for s in after), max(s.fds for s in after)),
        threads_range=(min(s.threads for s in after), max(s.threads for s in after)),
        fds_growth=max(s.fds for s in after) - max(s.fds for s in before),
        threads_growth=max(s.threads for s in after) - max(s.threads for s in before),
        journal_kb=samples[-1].journal_kb,
        frames_decoded=kw["decoded"],
        samples=samples,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=180.0, help="wall seconds of one simulated day"
    )
    parser.add_argument("--days", type=int, default=1, help="simulated days, back to back")
    parser.add_argument("--day-hours", type=float, default=8.0, help="simulated studio hours")
    parser.add_argument("--code-every", type=float, default=3.0, help="seconds between codes")
    parser.add_argument("--outage-every", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=12.0, help="seconds the backend is away")
    parser.add_argument("--restart-every", type=float, default=75.0)
    parser.add_argument("--json", type=Path, help="write the figures here")
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
    limit_malloc_arenas()  # as `kiosk run` does first, before any thread starts
    result = run_soak(
        args.duration,
        args.day_hours,
        days=args.days,
        code_every=args.code_every,
        outage_every=args.outage_every,
        outage_s=args.outage,
        restart_every=args.restart_every,
    )
    print(
        f"\n{result.frames} frames, {result.codes_shown} codes, {result.frames_decoded} decoded;"
        f" outcomes {result.outcomes}; {result.restarts} restarts, {result.outages} outages\n"
        f"RSS at start {result.rss_start_mb} MB, after warm-up {result.rss_warm_mb} MB,"
        f" end {result.rss_end_mb} MB, max {result.rss_max_mb} MB;"
        f" after warm-up {result.rss_growth_per_day_mb} MB per simulated day"
        f" (slope; limit {RSS_GROWTH_LIMIT_MB})\n"
        f"fds {result.fds_range} (growth {result.fds_growth}), threads {result.threads_range}"
        f" (growth {result.threads_growth}), journal {result.journal_kb} KB;"
        f" receipts accepted {result.receipts_accepted}, lost {result.receipts_lost}\n"
        f"{'OK' if result.ok else 'FAILED'}"
    )
    if args.json:
        figures = {**asdict(result), "ok": result.ok, "fsync_ms": args.fsync_ms}
        args.json.write_text(json.dumps(figures, indent=1))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
