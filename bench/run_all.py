"""Run every benchmark and rewrite docs/performance.md from their results.

    python bench/run_all.py [--soak-duration 60] [--soak-days 3] [--fsync-ms 20]
                            [--skip decode,latency,...] [--decode-args "--corpus DIR"]
                            [--arm64 docs/performance-arm64.json] [--out FILE]

Runs, each in a process of its own: ``bench/decode.py`` (writes
docs/performance-decode.md); then, with the journal's fsync as fast as this disk's
and again with ``--fsync-ms`` added (20 ms by default, the SD-card class):
``bench/latency.py`` (scan latency and outbox replay; docs/performance-latency.md and
docs/performance-latency-fsync.md), a short soak (``bench/soak.py``) and the memory
of ``kiosk run`` per mode (``bench/memory.py``: serial, HID, camera); and once
``bench/decision.py`` (the first scan after the backend starts failing, 503s and
silence; docs/performance-decision.md) and the start-up benchmark
(``bench/startup.py``). The memory per mode measured on the Pi's architecture by the
arm64 device test (``scripts/device-test-arm64.sh --figures
docs/performance-arm64.json``: CPython 3.13 on aarch64, emulated) is reported beside
this run's x86-64 figures, its rows naming their machine and date. Every figure
comes with its baseline from the same run,
and the load average at the start and the end is recorded. The
summary table collects every figure with its target, measurement, baseline,
ratio and the machine; the detail sections of the per-benchmark files follow
it. A benchmark that is missing or fails is marked so in the table; its last
detail section, if one exists, is kept and labelled as not re-measured.
Nothing in docs/performance.md is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DOCS = ROOT / "docs"
STEPS = ("decode", "latency", "decision", "soak", "startup", "memory")
SOAK_GROWTH_MB_PER_DAY = 1.0
CAMERA_BUDGET_MB = 80.0


@dataclass
class Row:
    figure: str
    target: str = ""
    measured: str = ""
    baseline: str = ""
    ratio: str = ""
    met: str = "-"
    machine: str = ""  # empty: the machine of this run


@dataclass
class Step:
    name: str
    status: str  # ran | failed (exit N) | not run (why)
    seconds: float = 0.0


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run_step(name: str, argv: list[str], timeout: float) -> Step:
    print(f"== {name}: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Step(name, f"failed (over {timeout:.0f} s)", time.monotonic() - started)
    took = time.monotonic() - started
    # Exit 1 from a benchmark means "ran, a target was missed": its figures still count.
    status = "ran" if done.returncode in (0, 1) else f"failed (exit {done.returncode})"
    return Step(name, status, took)


def table_rows(markdown: str) -> list[Row]:
    """The rows of the first ``| figure | ...`` table of a benchmark's markdown."""
    rows: list[Row] = []
    header: list[str] | None = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            if header is not None and rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if cells and cells[0] == "figure":
                header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        values = dict(zip(header, cells, strict=False))
        met = values.get("met", "-").replace("–", "-")
        rows.append(
            Row(
                values.get("figure", ""),
                values.get("target", ""),
                values.get("measured", ""),
                values.get("baseline", ""),
                values.get("ratio", ""),
                met or "-",
            )
        )
    return rows


def soak_rows(result: dict) -> list[Row]:
    fsync = f", fsync +{result.get('fsync_ms', 0)} ms"
    days = result.get("days", 1)
    label = (
        f"{days} days of {result['day_hours']:.0f} h, {result['duration_s']:.0f} s each,"
        f" camera 10 fps{fsync}, {result['codes_shown']} codes, {result['outages']} outages,"
        f" {result['restarts']} restarts"
    )
    per_day = result["rss_growth_per_day_mb"]
    warm_up = "the first day" if days > 1 else "the first quarter"
    return [
        Row(
            f"soak-lite ({label}): RSS growth per simulated day after {warm_up}"
            " (least-squares slope through every sample)",
            f"<= {SOAK_GROWTH_MB_PER_DAY:.0f} MB",
            f"{per_day:.2f} MB",
            f"RSS at start {result['rss_start_mb']:.1f} MB, after {warm_up}"
            f" {result['rss_warm_mb']:.1f} MB, end {result['rss_end_mb']:.1f} MB,"
            f" max {result['rss_max_mb']:.1f} MB",
            "",
            "yes" if per_day <= SOAK_GROWTH_MB_PER_DAY else "NO",
        ),
        Row(
            f"soak-lite{fsync}: RSS of the process running the kiosk, max after warm-up",
            f"<= {CAMERA_BUDGET_MB:.0f} MB (camera budget)",
            f"{result['rss_max_mb']:.1f} MB",
            "",
            "",
            "yes" if result["rss_max_mb"] <= CAMERA_BUDGET_MB else "NO",
        ),
        Row(
            f"soak-lite{fsync}: open files and threads after warm-up",
            "no growth (files +2 for a kept-alive connection)",
            f"files {result['fds_range'][0]}-{result['fds_range'][1]}"
            f" ({result['fds_growth']:+d}), threads {result['threads_range'][0]}-"
            f"{result['threads_range'][1]} ({result['threads_growth']:+d})",
            "levels before warm-up",
            "",
            "yes" if result["fds_growth"] <= 2 and result["threads_growth"] <= 0 else "NO",
        ),
        Row(
            f"soak-lite{fsync}: receipts accepted (online and offline) but not checked at the"
            " backend",
            "0",
            f"{result['receipts_lost']} of {result['receipts_accepted']}",
            "",
            "",
            "yes" if result["receipts_lost"] == 0 else "NO",
        ),
        Row(
            f"soak-lite{fsync}: journal size at the end (file + WAL)",
            "informational",
            f"{result['journal_kb']:.0f} KB",
        ),
    ]


def startup_rows(result: dict) -> list[Row]:
    return [
        Row(
            f"`kiosk run` to READY=1, simulated hardware, median of {result['runs']}",
            f"<= {result['target_s']:.0f} s",
            f"{result['median_s']:.3f} s (first run {result['first_s']:.3f} s)",
            f"`python -c pass` {result['python_pass_median_s']:.3f} s",
            f"{result['ratio']}x",
            "yes" if result["ok"] else "NO",
        )
    ]


MODE_LABEL = {
    "serial": "serial scanner (real pty, a receipt every 2 s), no GPIO",
    "hid": "HID scanner (event device absent: the reader retries), no GPIO",
    "camera": "camera at 10 fps (replay source), LED, buzzer and buttons on mock pins",
}


def memory_rows(result: dict) -> list[Row]:
    """One row per mode: RSS peak against its budget, with PSS and USS beside it."""
    rows = []
    fsync = f", fsync +{result.get('fsync_ms', 0)} ms"
    base = result["baseline_mb"]
    for m in result["modes"]:
        rows.append(
            Row(
                f"`kiosk run` memory, {MODE_LABEL.get(m['mode'], m['mode'])}, peak over"
                f" {m['seconds']:.0f} s{fsync}",
                f"RSS <= {m['target_mb']:.0f} MB",
                f"RSS {m['rss_peak_mb']} MB, PSS {m['pss_peak_mb']} MB, USS {m['uss_peak_mb']} MB"
                f" (anonymous {m['rss_anon_mb']} MB, mapped files {m['rss_file_mb']} MB;"
                f" files {m['fds'][0]}-{m['fds'][1]}, threads {m['threads'][0]}-{m['threads'][1]})",
                f"bare Python + numpy, zxing-cpp, Pillow {base} MB",
                f"{m['rss_peak_mb'] / base:.1f}x",
                "yes" if m["ok"] else "NO",
            )
        )
        if m["mode"] == "camera":
            rows.append(
                Row(
                    f"`kiosk run` CPU, camera at 10 fps, empty counter{fsync}",
                    "< 5% of one core",
                    f"{m['cpu_percent']}%",
                    met="yes" if m["cpu_percent"] < 5 else "NO",
                )
            )
    return rows


def arm64_rows(result: dict, x86: dict[str, float]) -> list[Row]:
    """The device test's figures on the Pi's architecture (``memory-modes``, written by
    ``scripts/device-test-arm64.sh --figures``), one row per mode beside this run's
    x86-64 peak (*x86*, by mode). The budgets are set on x86-64: here they are shown,
    not judged."""
    where = (
        f"arm64 VM of the device test (qemu-system-aarch64 cortex-a72 on {result['host']}),"
        f" CPython {result['guest_python']}, {result['date']}"
    )
    rows = []
    for m in result["modes"]:
        beside = x86.get(m["mode"])
        rows.append(
            Row(
                f"`kiosk run` memory on arm64, {MODE_LABEL.get(m['mode'], m['mode'])}, peak over"
                f" {result['seconds']:.0f} s",
                f"informational (x86-64 budget RSS <= {m['x86_64_budget_mb']:.0f} MB)",
                f"RSS {m['rss_peak_mb']} MB, PSS {m['pss_peak_mb']} MB, USS {m['uss_peak_mb']} MB",
                f"x86-64 RSS {beside} MB (this run, fsync +0 ms)" if beside else "",
                f"{m['rss_peak_mb'] / beside:.2f}x" if beside else "",
                machine=where,
            )
        )
    return rows


def soak_section(result: dict) -> list[str]:
    fsync_ms = result.get("fsync_ms", 0)
    lines = [
        f"## Soak (lite), fsync +{fsync_ms} ms",
        "",
        f"`python bench/soak.py --duration {result['duration_s']:.0f}"
        f" --days {result.get('days', 1)} --fsync-ms {fsync_ms}`: studio days of"
        f" {result['day_hours']:.0f} hours, each compressed into"
        f" {result['duration_s']:.0f} s, back to back. {result['frames']} camera frames at 10 fps"
        f" (640x480, {result['frames_decoded']} decoded after the idle gate),"
        f" {result['codes_shown']} codes shown, outcomes"
        f" {', '.join(f'{w} {n}' for w, n in sorted(result['outcomes'].items()))};"
        f" {result['outages']} backend outages, {result['restarts']} restarts on the same"
        " journal. Figures are the kiosk process's own: the backend and the drawing of the"
        " frames run in processes of their own; the kiosk's receives each frame's pixels.",
        "",
        "| t s | simulated hour | phase | RSS MB | open files | threads | journal KB | outcomes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result["samples"]:
        lines.append(
            f"| {s['t']:.0f} | {s['sim_hour']:.1f} | {s['phase']} | {s['rss_mb']:.2f} |"
            f" {s['fds']} | {s['threads']} | {s['journal_kb']:.0f} | {s['outcomes']} |"
        )
    return [*lines, "", "The full soak: `python bench/soak.py` (180 s by default).", ""]


def startup_section(result: dict) -> list[str]:
    runs = ", ".join(f"{r:.3f}" for r in result["ready_s"])
    lines = [
        "## Start-up",
        "",
        "`python bench/startup.py`: `python -m kiosk run` spawned with `NOTIFY_SOCKET` on a"
        " datagram socket of the benchmark; time from spawn to the `READY=1` datagram."
        " Display driver `none`, scanner `stdin`, no LED, buzzer or buttons, reference"
        " backend on 127.0.0.1, journal kept across runs; SIGTERM after READY, exit 0.",
        "",
        f"- Runs (s): {runs}.",
        f"- `python -c pass` median {result['python_pass_median_s']:.3f} s in the same run.",
    ]
    if result.get("slowest_imports"):
        top = ", ".join(
            f"{m.strip()} {us / 1000:.0f} ms" for us, m in result["slowest_imports"][:6]
        )
        lines.append(f"- Slowest imports (cumulative, `-X importtime`): {top}.")
    return [*lines, ""]


def detail(name: str, path: Path, step: Step) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8").rstrip()
    if step.status != "ran":
        note = f"_Not re-measured by this run ({step.status}); kept from the last run._"
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{note}\n{rest}"
    return [text, ""]


def write(
    out: Path,
    rows: list[Row],
    steps: list[Step],
    sections: list[str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    who = machine()
    cpu = cpu_model().split(" Processor")[0]
    short = f"{cpu}, {os.cpu_count()} cores, Py {platform.python_version()}"
    lines = [
        "# Performance",
        "",
        f"Generated by `python bench/run_all.py` on {date.today().isoformat()}; do not edit by"
        f" hand. Machine: {who}.",
        "",
        "Load average (1, 5, 15 min) at the start "
        + " ".join(f"{x:.2f}" for x in load[0])
        + ", at the end "
        + " ".join(f"{x:.2f}" for x in load[1])
        + ": the machine may be shared, so each figure is given with a baseline measured in"
        " the same run (the ratio travels better than the figure).",
        "",
        "Benchmarks: " + "; ".join(f"{s.name} {s.status} ({s.seconds:.0f} s)" for s in steps) + ".",
        "",
        "| figure | target | measured | baseline | ratio | met | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.figure} | {r.target} | {r.measured} | {r.baseline} | {r.ratio} | {r.met}"
            f" | {r.machine or short} |"
        )
    text = "\n".join([*lines, "", *sections]).rstrip() + "\n"
    out.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "performance.md")
    parser.add_argument(
        "--soak-duration", type=float, default=60.0, help="wall seconds of a simulated day"
    )
    parser.add_argument(
        "--soak-days",
        type=int,
        default=3,
        help="simulated days (the first is warm-up; growth is measured over the others)",
    )
    parser.add_argument(
        "--arm64",
        type=Path,
        default=DOCS / "performance-arm64.json",
        help="the arm64 device test's memory figures (scripts/device-test-arm64.sh --figures)",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated steps of {', '.join(STEPS)}")
    parser.add_argument("--decode-args", default="", help="extra arguments for decode.py")
    parser.add_argument("--latency-args", default="", help="extra arguments for latency.py")
    parser.add_argument(
        "--fsync-ms",
        type=int,
        default=20,
        help="extra ms per journal fsync for the second run of latency, soak and memory"
        " (default 20, an SD card)",
    )
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load_before = os.getloadavg()
    rows: list[Row] = []
    steps: list[Step] = []
    x86_rss: dict[str, float] = {}
    sections: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        work = Path(tmp)

        # decode
        decode_md = DOCS / "performance-decode.md"
        step = (
            Step("decode", "not run (skipped)")
            if "decode" in skip
            else run_step(
                "decode",
                ["bench/decode.py", "--out", str(decode_md), *args.decode_args.split()],
                1800,
            )
        )
        steps.append(step)
        rows += _rows_or_missing("decode", decode_md, step)
        sections += detail("decode", decode_md, step)

        # latency and replay, at this disk's fsync and at the SD-card class
        for fsync_ms, latency_md in (
            (0, DOCS / "performance-latency.md"),
            (args.fsync_ms, DOCS / "performance-latency-fsync.md"),
        ):
            name = f"latency (fsync +{fsync_ms} ms)"
            if "latency" in skip:
                step = Step(name, "not run (skipped)")
            else:
                argv = ["bench/latency.py", "--out", str(latency_md), "--fsync-ms", str(fsync_ms)]
                step = run_step(name, [*argv, *args.latency_args.split()], 1800)
            steps.append(step)
            rows += _rows_or_missing(f"latency and replay, fsync +{fsync_ms} ms", latency_md, step)
            sections += detail(name, latency_md, step)

        # decision time when the backend starts failing
        decision_md = DOCS / "performance-decision.md"
        step = (
            Step("decision", "not run (skipped)")
            if "decision" in skip
            else run_step("decision", ["bench/decision.py", "--out", str(decision_md)], 600)
        )
        steps.append(step)
        rows += _rows_or_missing("decision time", decision_md, step)
        sections += detail("decision", decision_md, step)

        # soak-lite, at this disk's fsync and at the SD-card class
        for fsync_ms in (0, args.fsync_ms):
            soak_json = work / f"soak-{fsync_ms}.json"
            name = f"soak-lite (fsync +{fsync_ms} ms)"
            step = (
                Step(name, "not run (skipped)")
                if "soak" in skip
                else run_step(
                    name,
                    [
                        "bench/soak.py",
                        "--duration",
                        str(args.soak_duration),
                        "--days",
                        str(args.soak_days),
                        "--restart-every",
                        str(args.soak_duration / 3),
                        "--outage-every",
                        str(args.soak_duration / 3),
                        "--outage",
                        str(min(12.0, args.soak_duration / 8)),
                        "--json",
                        str(soak_json),
                        "--fsync-ms",
                        str(fsync_ms),
                    ],
                    args.soak_duration * args.soak_days * 3 + 120,
                )
            )
            steps.append(step)
            if step.status == "ran" and soak_json.exists():
                soak = {**json.loads(soak_json.read_text()), "fsync_ms": fsync_ms}
                rows += soak_rows(soak)
                sections += soak_section(soak)
            else:
                rows.append(Row(name, measured=step.status))

        # start-up
        startup_json = work / "startup.json"
        step = (
            Step("startup", "not run (skipped)")
            if "startup" in skip
            else run_step(
                "startup", ["bench/startup.py", "--importtime", "--json", str(startup_json)], 600
            )
        )
        steps.append(step)
        if step.status == "ran" and startup_json.exists():
            startup = json.loads(startup_json.read_text())
            rows += startup_rows(startup)
            sections += startup_section(startup)
        else:
            rows.append(Row("start-up", measured=step.status))

        # memory of the real kiosk run, per mode
        for fsync_ms in (0, args.fsync_ms):
            memory_json = work / f"memory-{fsync_ms}.json"
            name = f"memory (fsync +{fsync_ms} ms)"
            step = (
                Step(name, "not run (skipped)")
                if "memory" in skip
                else run_step(
                    name,
                    ["bench/memory.py", "--json", str(memory_json), "--fsync-ms", str(fsync_ms)],
                    600,
                )
            )
            steps.append(step)
            if memory_json.exists():
                memory = json.loads(memory_json.read_text())
                rows += memory_rows(memory)
                if fsync_ms == 0:
                    x86_rss = {m["mode"]: m["rss_peak_mb"] for m in memory["modes"]}
            else:
                rows.append(Row(name, measured=step.status))

    # the same figures on the Pi's architecture, from the arm64 device test
    if args.arm64.exists():
        rows += arm64_rows(json.loads(args.arm64.read_text()), x86_rss)
    else:
        rows.append(Row("`kiosk run` memory on arm64", measured=f"not measured ({args.arm64})"))

    load = (load_before, os.getloadavg())
    print(write(args.out, rows, steps, sections, load))
    print(f"written to {args.out}")
    return (
        0
        if all(r.met != "NO" for r in rows)
        and not any(s.status.startswith("failed") for s in steps)
        else 1
    )


def _rows_or_missing(name: str, path: Path, step: Step) -> list[Row]:
    if path.exists() and (step.status == "ran" or step.status.startswith("failed")):
        found = table_rows(path.read_text(encoding="utf-8"))
        if step.status == "ran" and found:
            return found
    if path.exists() and step.status.startswith("not run (skipped)"):
        return [
            Row(r.figure, r.target, r.measured + " (earlier run)", r.baseline, r.ratio, r.met)
            for r in table_rows(path.read_text(encoding="utf-8"))
        ]
    return [Row(name, measured=step.status)]


if __name__ == "__main__":
    sys.exit(main())
