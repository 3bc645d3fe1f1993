"""`kiosk run` as systemd starts it: a real process, codes on stdin, SIGTERM, clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.config import load_config
from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 20.0


def wait_for_outcome(journal_path: str, tx: str, proc: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kiosk run ended early"
        if Path(journal_path).exists():
            with Journal.open(journal_path) as journal:
                words = [o.outcome for o in journal.outcomes() if o.tx == tx]
            if words:
                return words
        time.sleep(0.05)
    raise AssertionError("no outcome in the journal in time")


def test_run_checks_a_receipt_from_stdin_and_stops_on_sigterm(
    kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(scanner={"source": "stdin"}, log={"level": "info"})
    journal_path = load_config(config).journal.path
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
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
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.flush()
        assert wait_for_outcome(journal_path, tx, proc) == ["checked"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert token not in text  # only tx ids are logged
    with Journal.open(journal_path) as journal:
        assert journal.pending_count() == 0
