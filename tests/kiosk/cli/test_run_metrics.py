"""`kiosk run` with `[metrics] textfile` set: the file it leaves is valid and tells the status."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.config import load_config
from refbackend import DEMO_VENUE, ReferenceBackend

WAIT_S = 20.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_kiosk_run_metrics_file_passes_promtool_and_matches_status(
    kiosk_toml: Callable[..., Path],
    refbackend: ReferenceBackend,
    cli: Any,
    tmp_path: Path,
    kiosk_run: Callable[..., subprocess.Popen[bytes]],
    journal_outcomes: Callable[[str, str, subprocess.Popen[bytes]], list[str]],
) -> None:
    textfile = tmp_path / "node-exporter" / "kiosk.prom"
    textfile.parent.mkdir()
    config = kiosk_toml(
        scanner={"source": "stdin"}, metrics={"textfile": str(textfile), "interval": 0.2}
    )
    journal_path = load_config(config).journal.path
    proc = kiosk_run(config)

    def outcome_of(tx: str) -> str:
        return journal_outcomes(journal_path, tx, proc)[-1]

    assert proc.stdin is not None
    online_tx, online_token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    proc.stdin.write(online_token.encode() + b"\n")
    proc.stdin.flush()
    assert outcome_of(online_tx) == "checked"
    refbackend.pause()
    offline_tx, offline_token = refbackend.mint_receipt(DEMO_VENUE, 2500)
    proc.stdin.write(offline_token.encode() + b"\n")
    proc.stdin.flush()
    assert outcome_of(offline_tx) == "checked_offline"
    # The outcome row is committed before the result is shown and timed: wait until the
    # service's own file has timed both scans before stopping it.
    deadline = time.monotonic() + WAIT_S

    def timed() -> float | None:
        text = textfile.read_text() if textfile.exists() else ""
        return samples(text).get(("kiosk_scan_result_seconds_count", ()))

    while timed() != 2:
        assert time.monotonic() < deadline, timed()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_S)
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
