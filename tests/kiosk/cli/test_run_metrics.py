"""`kiosk run` with `[metrics] textfile` set: the file it leaves is valid and tells the status."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.config import load_config
from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 20.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def outcome_of(journal_path: str, tx: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kiosk run ended early"
        if Path(journal_path).exists():
            with Journal.open(journal_path) as journal:
                words = [o.outcome for o in journal.outcomes() if o.tx == tx]
            if words:
                return str(words[-1])
        time.sleep(0.05)
    raise AssertionError(f"no outcome for {tx} in the journal in time")


def test_kiosk_run_metrics_file_passes_promtool_and_matches_status(
    kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend, cli: Any, tmp_path: Path
) -> None:
    textfile = tmp_path / "node-exporter" / "kiosk.prom"
    textfile.parent.mkdir()
    config = kiosk_toml(
        scanner={"source": "stdin"}, metrics={"textfile": str(textfile), "interval": 0.2}
    )
    journal_path = load_config(config).journal.path
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdin is not None
        online_tx, online_token = refbackend.mint_receipt(DEMO_VENUE, 6500)
        proc.stdin.write(online_token.encode() + b"\n")
        proc.stdin.flush()
        assert outcome_of(journal_path, online_tx, proc) == "checked"
        refbackend.pause()
        offline_tx, offline_token = refbackend.mint_receipt(DEMO_VENUE, 2500)
        proc.stdin.write(offline_token.encode() + b"\n")
        proc.stdin.flush()
        assert outcome_of(journal_path, offline_tx, proc) == "checked_offline"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err.decode("utf-8", "replace")
    # The service's own last write, at stop: nothing else wrote into the folder.
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["kiosk.prom"]
    text = textfile.read_text()

    code, out, _ = cli("status", "--config", str(config), "--json")
    assert code == 0
    status = json.loads(out)
    got = samples(text)
    assert status["pending"] == 1 and status["offline_exposure_cents"] == 2500
    assert got[("kiosk_journal_pending", ())] == status["pending"]
    assert got[("kiosk_journal_quarantined", ())] == status["quarantined"] == 0
    assert got[("kiosk_offline_exposure_cents", ())] == status["offline_exposure_cents"]
    assert got[("kiosk_offline_checks", ())] == status["offline_count"] == 1
    assert got[("kiosk_offline_conflicts_total", ())] == status["conflicts_24h"] == 0
    # Database plus write-ahead log: the log is folded in when the last connection closes,
    # so the running service's figure is at least the database's size.
    assert got[("kiosk_journal_bytes", ())] >= Path(journal_path).stat().st_size > 0
    assert status["journal_bytes"] >= Path(journal_path).stat().st_size
    assert got[("kiosk_backend_up", ())] == int(status["online"]) == 0
    assert got[("kiosk_clock_synced", ())] == int(status["clock_synced"])
    assert got[("kiosk_last_sync_timestamp_seconds", ())] == pytest.approx(
        epoch(status["last_sync"]), abs=1.0
    )
    assert got[("kiosk_journal_oldest_pending_timestamp_seconds", ())] == pytest.approx(
        epoch(status["oldest_pending"]), abs=1.0
    )
    assert got[("kiosk_build_info", (("version", status["version"]),))] == 1
    scans = {dict(k[1])["outcome"]: v for k, v in got.items() if k[0] == "kiosk_scans_total"}
    assert scans == {"checked": 1, "checked_offline": 1}
    assert got[("kiosk_scan_result_seconds_count", ())] == 2  # both scans timed by the service

    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
