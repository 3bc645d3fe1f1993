"""fleet/alerts.yml: valid for Prometheus, and each alert fires when it should (promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from fleet_hosts import FLEET

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus)"
)

ALERTS = {
    "KioskDown",
    "KioskNotRunning",
    "KioskBackendUnreachable",
    "KioskUploadsPending",
    "KioskRequestsQuarantined",
    "KioskOfflineExposureHigh",
    "KioskClockNotSynchronised",
    "KioskJournalDiskNearlyFull",
}


def promtool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *argv], cwd=FLEET, capture_output=True, text=True, timeout=120
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_is_unit_tested_and_fires_as_expected() -> None:
    rules = yaml.safe_load((FLEET / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert names == ALERTS
    tests = yaml.safe_load((FLEET / "alerts.test.yml").read_text())
    tested = {
        case["alertname"]
        for t in tests["tests"]
        for case in t["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested == ALERTS  # each one is shown to fire at least once
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
