"""The metrics writer: its own registry, atomic writes every interval and at stop, owned thread."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from kiosk.config import MetricsConfig, parse_config
from kiosk.journal import Journal
from kiosk.metrics import KioskMetrics, TextfileWriter, writer_for
from kiosk.service import run
from refbackend import DEMO_VENUE, ReferenceBackend


def values(path: Path) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
        if not s.labels
    }


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_own_registry_not_the_global_one(tmp_path: Path) -> None:
    metrics = KioskMetrics(tmp_path / "journal.db", clock_synced=lambda: False)
    try:
        text = prometheus_client.generate_latest(metrics.registry).decode()
        assert "kiosk_journal_pending 0.0" in text
        # Absent, not zero, when there is nothing to date: an alert on age must not fire.
        assert "\nkiosk_journal_oldest_pending_timestamp_seconds " not in text
        assert "\nkiosk_last_sync_timestamp_seconds " not in text
        assert "kiosk_" not in prometheus_client.generate_latest().decode()
    finally:
        metrics.close()


def test_writer_writes_every_interval_and_at_stop(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    path = tmp_path / "kiosk.prom"
    metrics = KioskMetrics(journal_path, clock_synced=lambda: True)
    writer = TextfileWriter(metrics, path, interval=0.05)
    writer.start()
    try:
        wait_for(lambda: writer.writes >= 3)
        assert values(path)["kiosk_journal_pending"] == 0
        with Journal.open(journal_path) as journal:
            journal.begin("receipt", {"token": "t"}, tx="rcp_1", amount_cents=100)
        wait_for(lambda: values(path)["kiosk_journal_pending"] == 1)
    finally:
        writer.stop(timeout=5.0)
    assert writer._thread is None
    before = writer.writes
    writer.stop()  # twice is harmless
    assert writer.writes == before
    # Nothing but the final file in the folder: the temporary file was renamed over it.
    assert sorted(p.name for p in tmp_path.iterdir() if "kiosk.prom" in p.name) == ["kiosk.prom"]


def test_file_is_readable_by_node_exporter_despite_the_services_umask(tmp_path: Path) -> None:
    metrics = KioskMetrics(tmp_path / "journal.db")
    path = tmp_path / "kiosk.prom"
    old = os.umask(0o077)  # as kiosk.service sets it
    try:
        metrics.write(path)
        metrics.write(path)
    finally:
        os.umask(old)
        metrics.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if "prom" in p.name) == ["kiosk.prom"]


def test_final_write_at_stop_with_long_interval(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    path = tmp_path / "kiosk.prom"
    writer = TextfileWriter(KioskMetrics(journal_path), path, interval=3600.0)
    writer.start()
    wait_for(lambda: writer.writes == 1)
    with Journal.open(journal_path) as journal:
        journal.record("receipt", "checked", tx="rcp_1", amount_cents=100)
    started = time.monotonic()
    writer.stop(timeout=5.0)
    assert time.monotonic() - started < 5.0
    assert writer.writes == 2
    text = path.read_text()
    assert 'kiosk_scans_total{outcome="checked"} 1.0' in text


def test_unwritable_folder_is_logged_once_and_the_kiosk_goes_on(
    tmp_path: Path, caplog: Any
) -> None:
    missing = tmp_path / "no-node-exporter" / "kiosk.prom"
    writer = TextfileWriter(KioskMetrics(tmp_path / "journal.db"), missing, interval=60.0)
    with caplog.at_level(logging.WARNING, logger="kiosk.metrics"):
        assert writer.write_once() is False
        assert writer.write_once() is False
    warnings = [r.getMessage() for r in caplog.records if r.name == "kiosk.metrics"]
    assert len(warnings) == 1 and str(missing) in warnings[0]
    missing.parent.mkdir()
    assert writer.write_once() is True and missing.exists()
    writer.metrics.close()


def test_histograms_time_scans_and_decodes(tmp_path: Path) -> None:
    now = [100.7]
    metrics = KioskMetrics(tmp_path / "journal.db", monotonic=lambda: now[0])
    metrics.scan_answered(100.0)

    class Decoder:
        name = "zxing"

        def decode(self, pixels: Any) -> list[str]:
            return [str(pixels)]

    timed = metrics.timed_decoder(Decoder())
    assert timed.decode(5) == ["5"] and timed.name == "zxing"
    path = tmp_path / "kiosk.prom"
    metrics.write(path)
    metrics.close()
    got = values(path)
    assert got["kiosk_scan_result_seconds_count"] == 1
    assert abs(got["kiosk_scan_result_seconds_sum"] - 0.7) < 1e-9
    assert got["kiosk_decode_seconds_count"] == 1


def test_empty_textfile_in_the_metrics_section_writes_nothing(tmp_path: Path) -> None:
    off = writer_for(MetricsConfig(textfile=""), KioskMetrics(tmp_path / "j.db"), lambda: True)
    off.start()
    assert off._thread is None and off.write_once() is False
    off.stop()
    assert list(tmp_path.iterdir()) == []
    on = writer_for(
        MetricsConfig(textfile=str(tmp_path / "kiosk.prom"), interval=5.0),
        KioskMetrics(tmp_path / "j.db"),
        lambda: True,
    )
    assert on.path == tmp_path / "kiosk.prom" and on.interval == 5.0
    assert on.metrics.backend_up() is True


def test_kiosk_run_writes_the_textfile(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)
    cfg = parse_config(
        {
            "device": {"id": "counter-1", "venue": DEMO_VENUE},
            "backend": {
                "url": refbackend.url,
                "client_id": demo_client[0],
                "client_secret_file": str(secret),
                "issuer": refbackend.issuer,
            },
            "scanner": {"source": "serial", "port": str(tmp_path / "no-scanner")},
            "display": {"driver": "none"},
            "signals": {"led_pin": -1, "buzzer_pin": -1, "button_ok": -1},
            "journal": {"path": str(tmp_path / "journal.db"), "min_free_mb": 0},
        }
    )
    textfile = tmp_path / "node-exporter" / "kiosk.prom"
    textfile.parent.mkdir()
    with_metrics = dataclasses.replace(
        cfg, metrics=dataclasses.replace(cfg.metrics, textfile=str(textfile), interval=0.2)
    )
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(with_metrics, stop=stop)))
    thread.start()
    try:
        wait_for(textfile.exists)
        wait_for(lambda: values(textfile).get("kiosk_backend_up") == 1)
    finally:
        stop.set()
        thread.join(30)
    assert result == [0]
    got = values(textfile)
    assert got["kiosk_journal_pending"] == 0 and got["kiosk_offline_exposure_cents"] == 0


def test_conflicts_of_24h_follow_the_clear_and_a_replaced_journal_is_read_anew(
    tmp_path: Path,
) -> None:
    from kiosk.clock import read_clocks
    from kiosk.flows.offline import clear_conflicts
    from kiosk.metrics import Limits

    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        for i in range(2):
            journal.record("receipt", "conflict", tx=f"tx_{i:016d}", now=time.time() - 60)
    metrics = KioskMetrics(path, clock_synced=lambda: True, limits=Limits(1, 1, 0, 3))

    def sample(name: str) -> float:
        text = prometheus_client.generate_latest(metrics.registry).decode()
        (value,) = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]
        return value

    try:
        assert sample("kiosk_offline_conflicts_24h") == 2
        assert sample("kiosk_offline_limit_conflicts") == 3
        with Journal.open(path) as journal:
            clear_conflicts(journal, read_clocks(), by="tech")
        assert sample("kiosk_offline_conflicts_24h") == 0
        assert sample("kiosk_offline_conflicts_total") == 2
        # The service moved the journal aside and started a fresh one.
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{path}.corrupt-1{suffix}")
        Journal.open(path).close()
        assert sample("kiosk_offline_conflicts_total") == 0
    finally:
        metrics.close()


def counters(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The ``*_total`` samples of the textfile, as Prometheus's own parser reads them."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        if family.type == "counter"
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_counters_do_not_go_down_when_the_retention_prunes_old_scans(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    day = 86400.0
    now = time.time()
    with Journal.open(journal_path) as journal:
        for n in range(2):
            journal.record("receipt", "checked", tx=f"rcp_old_{n}", now=now - 120 * day)
        journal.record("receipt", "conflict", tx="rcp_old_conflict", now=now - 120 * day)
        journal.record("charge", "charged", tx="chg_old", now=now - 100 * day)
        journal.record("receipt", "checked", tx="rcp_new", now=now - 60.0)
    metrics = KioskMetrics(journal_path, clock_synced=lambda: True)
    path = tmp_path / "kiosk.prom"
    try:
        metrics.write(path)
        before = counters(path)
        assert before == {
            ("kiosk_scans_total", (("outcome", "charged"),)): 1,
            ("kiosk_scans_total", (("outcome", "checked"),)): 3,
            ("kiosk_scans_total", (("outcome", "conflict"),)): 1,
            ("kiosk_offline_conflicts_total", ()): 1,
        }
        # The sync worker prunes with its own connection while the writer keeps its own.
        with Journal.open(journal_path) as journal:
            assert journal.prune(90, now=now) == 4
            assert [o.tx for o in journal.outcomes()] == ["rcp_new"]
        metrics.write(path)
        assert counters(path) == before
    finally:
        metrics.close()
    # After a restart: a new registry reads the same counters from the journal.
    restarted = KioskMetrics(journal_path, clock_synced=lambda: True)
    try:
        restarted.write(path)
    finally:
        restarted.close()
    assert counters(path) == before
