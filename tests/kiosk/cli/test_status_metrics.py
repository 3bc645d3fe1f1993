"""The metrics file tells the same figures as `kiosk status --json` and `history --local`."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.figures import QUARANTINED_STATE
from kiosk.journal import Journal
from kiosk.metrics import KioskMetrics, Limits, TextfileWriter
from refbackend import DEMO_VENUE, ReferenceBackend


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_metrics_file_matches_status_and_history(
    cli: Any, counter: Any, refbackend: ReferenceBackend, tmp_path: Path
) -> None:
    config = Path(counter.cfg.source)
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1500)[1]).word == "checked"
    refbackend.pause()
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 4500)[1]).word == (
        "checked_offline"
    )
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 2000)[1]).word == (
        "checked_offline"
    )
    # Figures the flows do not produce yet: a conflict found earlier today, and one request
    # set aside in the quarantine state.
    with Journal.open(counter.cfg.journal.path) as journal:
        journal.record("receipt", "conflict", tx="rcp_conflict", amount_cents=700, synced=True)
        rid = journal.begin("receipt", {"token": "x"}, tx="rcp_q", amount_cents=300).id
        journal.conn.execute("UPDATE requests SET state = ? WHERE id = ?", (QUARANTINED_STATE, rid))

    code, out, _ = cli("status", "--config", str(config), "--json")
    assert code == 0
    status = json.loads(out)
    code, out, _ = cli("history", "--config", str(config), "--local", "--json")
    assert code == 0
    history = json.loads(out)["items"]

    textfile = tmp_path / "node-exporter" / "kiosk.prom"
    textfile.parent.mkdir()
    metrics = KioskMetrics(
        counter.cfg.journal.path,
        backend_up=lambda: False,
        clock_synced=lambda: True,
        limits=Limits.of(counter.cfg),
    )
    writer = TextfileWriter(metrics, textfile, interval=60.0)
    assert writer.write_once()
    metrics.close()
    got = samples(textfile)

    # The journal's content, as both tell it.
    assert status["pending"] == 2 and status["quarantined"] == 1
    assert status["offline_exposure_cents"] == 6500 and status["conflicts_24h"] == 1
    assert got[("kiosk_journal_pending", ())] == status["pending"]
    assert got[("kiosk_journal_quarantined", ())] == status["quarantined"]
    assert got[("kiosk_offline_exposure_cents", ())] == status["offline_exposure_cents"]
    assert got[("kiosk_offline_checks", ())] == status["offline_count"] == 2
    assert got[("kiosk_offline_conflicts_total", ())] == status["conflicts_24h"]
    assert got[("kiosk_journal_bytes", ())] == status["journal_bytes"] > 0
    assert got[("kiosk_last_sync_timestamp_seconds", ())] == pytest.approx(
        epoch(status["last_sync"]), abs=1.0
    )
    assert got[("kiosk_journal_oldest_pending_timestamp_seconds", ())] == pytest.approx(
        epoch(status["oldest_pending"]), abs=1.0
    )
    assert got[("kiosk_backend_up", ())] == int(status["online"]) == 0
    assert got[("kiosk_clock_synced", ())] == 1
    free = got[("kiosk_journal_disk_free_bytes", ())]
    assert abs(free - status["disk_free_bytes"]) < 64 * 1024 * 1024  # others write meanwhile
    # The configured limits, for alert rules to compare against.
    offline = counter.cfg.offline
    assert got[("kiosk_offline_limit_cents", ())] == offline.max_total_cents
    assert got[("kiosk_offline_limit_checks", ())] == offline.max_count
    assert got[("kiosk_journal_min_free_bytes", ())] == 0  # min_free_mb = 0 in this config
    from kiosk import __version__

    assert got[("kiosk_build_info", (("version", __version__),))] == 1
    by_outcome = Counter(item["outcome"] for item in history)
    assert by_outcome == {"checked": 2, "checked_offline": 2, "conflict": 1}
    scans = {
        dict(labels)["outcome"]: value
        for (name, labels), value in got.items()
        if name == "kiosk_scans_total"
    }
    assert scans == by_outcome
    # A restart does not reset the counters: a new registry reads the same journal.
    again = tmp_path / "again.prom"
    fresh = KioskMetrics(counter.cfg.journal.path, clock_synced=lambda: True)
    fresh.write(again)
    fresh.close()
    assert {k: v for k, v in samples(again).items() if k[0] == "kiosk_scans_total"} == {
        k: v for k, v in got.items() if k[0] == "kiosk_scans_total"
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus)")
def test_promtool_accepts_the_metrics_file(counter: Any, refbackend: ReferenceBackend) -> None:
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    refbackend.pause()
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 4500)[1]).word == (
        "checked_offline"
    )
    metrics = KioskMetrics(counter.cfg.journal.path, limits=Limits.of(counter.cfg))
    metrics.scan_result_seconds.observe(0.4)
    metrics.decode_seconds.observe(0.02)
    path = Path(counter.cfg.journal.path).with_name("kiosk.prom")
    metrics.write(path)
    metrics.close()
    text = path.read_text()
    assert "kiosk_scan_result_seconds_bucket" in text and "kiosk_decode_seconds_count" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # promtool exits 0 and prints nothing when the exposition is valid and lint-clean.
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
