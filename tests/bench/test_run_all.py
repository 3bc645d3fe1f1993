"""docs/performance.md reports the arm64 device test's memory beside this run's x86-64."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import run_all

ARM64 = {
    "date": "2026-12-07",
    "arch": "arm64",
    "guest_python": "3.13.5",
    "host": "x86_64",
    "seconds": 60,
    "modes": [
        {"mode": "serial", "rss_peak_mb": 55.2, "pss_peak_mb": 41.0, "uss_peak_mb": 31.0,
         "x86_64_budget_mb": 55.0, "alive": True},
        {"mode": "camera", "rss_peak_mb": 72.1, "pss_peak_mb": 54.9, "uss_peak_mb": 42.3,
         "x86_64_budget_mb": 80.0, "alive": True},
    ],
}  # fmt: skip


def test_arm64_rows_stand_beside_the_x86_figures_and_name_their_machine() -> None:
    rows = run_all.arm64_rows(ARM64, {"serial": 53.6, "camera": 70.8})

    assert [r.measured.split(",")[0] for r in rows] == ["RSS 55.2 MB", "RSS 72.1 MB"]
    assert rows[0].baseline == "x86-64 RSS 53.6 MB (this run, fsync +0 ms)"
    assert rows[0].ratio == "1.03x"
    assert all("CPython 3.13.5" in r.machine and "aarch64" in r.machine for r in rows)
    # The budgets are x86-64's: an arm64 figure above one is shown, not judged.
    assert all(r.met == "-" for r in rows)


def test_table_gives_each_row_its_own_machine(tmp_path: Path) -> None:
    rows = [run_all.Row("here"), *run_all.arm64_rows(ARM64, {})]
    out = tmp_path / "performance.md"

    text = run_all.write(out, rows, [], [], ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))

    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert "arm64" not in lines[0] and "Py " in lines[0]
    assert all("arm64 VM of the device test" in line for line in lines[1:])
    assert rows[1].baseline == ""
