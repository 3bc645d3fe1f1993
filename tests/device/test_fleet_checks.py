"""The device test's fleet checks, run here against local stand-ins for the VM.

- journal: a journal file made here is sent by the real ``systemd-journal-upload`` to
  the real ``systemd-journal-remote`` that :class:`JournalReceiver` starts (HTTPS with
  the client certificate of :func:`make_log_pki`, and plain HTTP);
- metrics: the kiosk's metrics file served over HTTP on 127.0.0.1, compared with the
  real ``kiosk status --json``;
- Ansible: update.yml over two local kiosks (tests/fleet), the second one failing.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_checks import (
    JOURNAL_REMOTE,
    JournalReceiver,
    SshTarget,
    check_metrics,
    fleet_inventory,
    make_log_pki,
    metrics_problems,
    run_playbook,
    scrape,
    ssh_host_vars,
    update_wave_problems,
)

from kiosk.journal import Journal
from kiosk.metrics import KioskMetrics, Limits
from refbackend import DEMO_VENUE, ReferenceBackend

ROOT = Path(__file__).resolve().parents[2]
UPLOAD = Path(JOURNAL_REMOTE).with_name("systemd-journal-upload")


def journal_with_an_entry(folder: Path, tx: str) -> Path:
    """A journal file holding one kiosk entry, written by systemd-journal-remote from
    journal export format (no journald needed)."""
    folder.mkdir()
    export = (
        f"__REALTIME_TIMESTAMP={time.time_ns() // 1000}\n__MONOTONIC_TIMESTAMP=1000000\n"
        "_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=counter-1\n"
        "SYSLOG_IDENTIFIER=kiosk\nMESSAGE=receipt checked\n"
        f"KIOSK_TX={tx}\nKIOSK_OUTCOME=checked\nKIOSK_DEVICE=counter-1\n\n"
    )
    subprocess.run([JOURNAL_REMOTE, f"--output={folder / 'kiosk.journal'}", "-"],
                   input=export.encode(), check=True, capture_output=True, timeout=30)  # fmt: skip
    return folder


def upload(url: str, journal: Path, *tls: str) -> subprocess.CompletedProcess[str]:
    argv = [str(UPLOAD), f"--url={url}", f"--directory={journal}", "--follow=no", *tls]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_receiver_gets_the_kiosk_entry_over_https(
    tmp_path: Path,
) -> None:
    journal = journal_with_an_entry(tmp_path / "kiosk-journal", "rcp_upload_1")
    pki = make_log_pki(tmp_path / "pki", ["127.0.0.1", "10.0.2.2"])
    assert oct(pki.client_key.stat().st_mode & 0o777) == "0o600"
    with JournalReceiver(pki=pki) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        # An uploader that trusts another CA refuses to send: the kiosk checks the server.
        other = make_log_pki(tmp_path / "other-pki", ["127.0.0.1"])
        refused = upload(receiver.url, journal, f"--trust={other.ca}", "--key=-", "--cert=-")
        assert refused.returncode != 0
        assert receiver.entries("KIOSK_TX=rcp_upload_1") == []
        sent = upload(receiver.url, journal, f"--trust={pki.ca}",
                      f"--key={pki.client_key}", f"--cert={pki.client_cert}")  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        entry = receiver.wait_for_entry("KIOSK_TX", "rcp_upload_1", timeout=30)
        output = receiver.output
    assert entry["KIOSK_OUTCOME"] == "checked" and entry["KIOSK_DEVICE"] == "counter-1"
    assert entry["_HOSTNAME"] == "counter-1"
    assert output is not None and not output.exists()  # the receiver's folder is cleaned up


def test_receiver_over_plain_http_and_its_timeout(tmp_path: Path) -> None:
    journal = journal_with_an_entry(tmp_path / "kiosk-journal", "rcp_upload_2")
    with JournalReceiver() as receiver:
        assert receiver.url.startswith("http://")
        with pytest.raises(AssertionError, match="no journal entry with KIOSK_TX"):
            receiver.wait_for_entry("KIOSK_TX", timeout=0)
        sent = upload(receiver.url, journal)
        assert sent.returncode == 0, sent.stderr
        assert receiver.wait_for_entry("KIOSK_TX", timeout=30)["KIOSK_TX"] == "rcp_upload_2"
        proc = receiver.proc
    assert proc is not None and proc.poll() is not None  # stopped by the with block


# --- metrics ----------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, as node_exporter serves /metrics."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_check_metrics_compares_the_page_with_kiosk_status(
    tmp_path: Path,
    served: tuple[Path, str],
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
) -> None:
    folder, url = served
    secret = tmp_path / "client_secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)
    journal_path = tmp_path / "journal.db"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "counter-1"\nvenue = "{DEMO_VENUE}"\n'
        f'[backend]\nurl = "{refbackend.url}"\nclient_id = "{demo_client[0]}"\n'
        f'client_secret_file = "{secret}"\nissuer = "{refbackend.issuer}"\n'
        f'[journal]\npath = "{journal_path}"\nmin_free_mb = 0\n[metrics]\ntextfile = ""\n'
    )
    with Journal.open(journal_path) as journal:
        journal.record("receipt", "checked", tx="rcp_1", amount_cents=1000, synced=True)
        journal.begin("receipt", {"token": "t"}, tx="rcp_2", amount_cents=2500)

    def status() -> Any:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "kiosk", "status", "--json", "--config", str(config)]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def write_page() -> None:
        from kiosk.config import load_config

        metrics = KioskMetrics(journal_path, limits=Limits.of(load_config(config)))
        metrics.write(folder / "kiosk.prom")
        metrics.close()
        (folder / "kiosk.prom").rename(folder / "metrics")

    with pytest.raises(AssertionError, match=r"Connection refused|404|Not Found"):
        check_metrics(url, status, timeout=0.5, poll=0.1)  # nothing served yet
    write_page()
    families = check_metrics(url, status, timeout=30, poll=0.2)
    assert families["kiosk_journal_pending"][("kiosk_journal_pending",)] == 1
    # A page that no longer tells the journal's state is caught.
    with Journal.open(journal_path) as journal:
        journal.begin("receipt", {"token": "u"}, tx="rcp_3", amount_cents=700)
    problems = metrics_problems(scrape(url), status())
    assert problems == ["kiosk_journal_pending is 1.0, status says 2"]
    write_page()
    assert metrics_problems(scrape(url), status()) == []
    (folder / "metrics").write_text("node_load1 0.5\n")
    assert "missing family kiosk_scans" in metrics_problems(scrape(url), status())


def test_gauges_without_a_value_may_be_absent_but_not_when_status_has_one() -> None:
    from fleet_checks import KIOSK_FAMILIES

    status = {"pending": 0, "quarantined": 0, "offline_exposure_cents": 0, "offline_count": 0,
              "clock_synced": True, "oldest_pending": None, "last_sync": None,
              "conflicts_24h": 0, "version": "1.0"}  # fmt: skip
    families: dict[str, dict[tuple[Any, ...], float]] = {
        name: {(name,): 0.0} for name in KIOSK_FAMILIES
    }
    families["kiosk_clock_synced"] = {("kiosk_clock_synced",): 1.0}
    families["kiosk_offline_conflicts"] = {("kiosk_offline_conflicts_total",): 0.0}
    families["kiosk_build_info"] = {("kiosk_build_info", ("version", "1.0")): 1.0}
    del families["kiosk_journal_oldest_pending_timestamp_seconds"]
    del families["kiosk_last_sync_timestamp_seconds"]
    assert metrics_problems(families, status) == []
    status["oldest_pending"] = "2026-11-30T08:00:00Z"
    assert metrics_problems(families, status) == [
        "kiosk_journal_oldest_pending_timestamp_seconds is None, status says 2026-11-30T08:00:00Z"
    ]


# --- Ansible ----------------------------------------------------------------------------

sys.path.insert(0, str(ROOT / "tests" / "fleet"))
from fleet_hosts import install_kiosks, needs_root, wheelhouse, write_inventory  # noqa: E402


def test_vm_inventory_variables() -> None:
    target = SshTarget("127.0.0.1", 2222, "tech", Path("/tmp/id_ed25519"))
    host = ssh_host_vars(target)
    assert host["ansible_port"] == 2222 and host["ansible_user"] == "tech"
    assert "StrictHostKeyChecking=no" in host["ansible_ssh_common_args"]
    assert target.argv("true")[-2:] == ["tech@127.0.0.1", "true"]


@needs_root
def test_update_waves_stop_at_the_failing_second_host(tmp_path: Path) -> None:
    # The first host stands in for the VM here; on the device test it is ssh_host_vars(vm).
    hosts = install_kiosks(tmp_path, ["first", "failing"])
    local = json.loads(write_inventory(tmp_path / "local.json", {"all": hosts}).read_text())
    local_vars = local["all"]["children"]["kiosks"]["children"]["all"]["hosts"]
    inventory = fleet_inventory(
        tmp_path / "inventory.json",
        [("vm", "first", local_vars["first"]), ("failing", "failing", local_vars["failing"])],
    )
    hosts["failing"].mark("broken", "0.2.0")
    fast = {"kiosk_settle_s": 0, "kiosk_ready_timeout_s": 4, "kiosk_health_delay_s": 0}
    result = run_playbook("update.yml", inventory, tmp_path,
                          kiosk_wheelhouse=str(wheelhouse(tmp_path, "0.2.0")), **fast)  # fmt: skip
    print(result.stdout[-8000:])
    problems = update_wave_problems(
        result,
        updated={"first": hosts["first"].current()},
        failing="failing",
        failing_release=hosts["failing"].current(),
        old_release="0.1.0",
        new_release="0.2.0",
    )
    assert problems == []
    # The same check catches a rollout that went on, or a host left on the new release.
    assert update_wave_problems(
        subprocess.CompletedProcess([], 0, "", ""), updated={"first": "0.1.0"},
        failing="failing", failing_release="0.2.0", old_release="0.1.0", new_release="0.2.0",
    ) == [
        "update.yml succeeded although a host's update failed", "first runs 0.1.0, not 0.2.0",
        "failing runs 0.2.0, not its old 0.1.0", "no 'ROLLOUT STOPPED at failing' in the output",
    ]  # fmt: skip
    status = run_playbook("status.yml", inventory, tmp_path,
                          kiosk_status_csv=str(tmp_path / "fleet.csv"))  # fmt: skip
    assert status.returncode == 0, status.stdout
    assert (tmp_path / "fleet.csv").read_text().count("\n") == 3  # header and two kiosks


def test_playbooks_run_when_the_inherited_stdin_is_non_blocking(tmp_path: Path) -> None:
    # In CI the device test's stdin was left non-blocking (by a child sharing it), and
    # ansible-playbook refused to start: every fleet check failed before reaching the VM.
    inventory = fleet_inventory(tmp_path / "inventory.json", [])
    child = (
        "import os, sys\n"
        "r, w = os.pipe(); os.dup2(r, 0); os.set_blocking(0, False)\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\n"
        "from fleet_checks import run_playbook\n"
        f"result = run_playbook('status.yml', Path({str(inventory)!r}), Path({str(tmp_path)!r}),"
        f" kiosk_status_csv={str(tmp_path / 'fleet.csv')!r})\n"
        "print(result.returncode); print(result.stdout[-2000:]); print(result.stderr[-2000:])\n"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)  # fmt: skip
    assert "blocking IO" not in result.stdout, result.stdout
    assert result.stdout.splitlines()[0] == "0", result.stdout + result.stderr
