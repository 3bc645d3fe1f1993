"""Command-line fixtures: a kiosk.toml against the reference backend, and ways to fill its journal.

- ``kiosk_toml``: ``kiosk_toml(**sections) -> Path``, a config file (secret file mode 0600,
  journal in tmp, no display, stdin scanner, no pins, no metrics file) for
  ``refbackend``/``demo_client``.
- ``cli``: ``cli(*argv) -> (status, stdout, stderr)`` through ``kiosk.cli.main`` in-process.
- ``kiosk_run``: ``kiosk_run(config, stdin=PIPE) -> Popen``, ``kiosk run`` as a process of its
  own (no systemd notify socket); ``journal_outcomes(journal_path, tx, proc)`` waits for the
  outcome words the journal holds for *tx*.
- ``counter``: a :class:`Desk` that scans receipts and charges codes through the real flows,
  with the same journal and backend the commands use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import main
from kiosk.cli._common import flow_context
from kiosk.config import Config, load_config
from kiosk.flows import payment
from kiosk.flows.receipt import check_receipt
from kiosk.journal import Journal
from kiosk.tokens import BareCode, Receipt, classify
from kiosk.views import Outcome
from refbackend import DEMO_VENUE, ReferenceBackend


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def write_toml(path: Path, raw: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def kiosk_toml(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> Callable[..., Path]:
    def make(**sections: dict[str, Any]) -> Path:
        secret = tmp_path / "client_secret"
        secret.write_text(demo_client[1])
        secret.chmod(0o600)
        raw: dict[str, dict[str, Any]] = {
            "device": {"id": "counter-1", "venue": DEMO_VENUE, "default_service": "classic-60"},
            "backend": {
                "url": refbackend.url,
                "client_id": demo_client[0],
                "client_secret_file": str(secret),
                "issuer": refbackend.issuer,
                "connect_timeout": 0.5,
                "read_timeout": 2.0,
            },
            "scanner": {"source": "stdin"},
            "display": {"driver": "none"},
            "journal": {"path": str(tmp_path / "state" / "journal.db"), "min_free_mb": 0},
            "metrics": {"textfile": ""},  # never node_exporter's folder of this machine
        }
        for name, values in sections.items():
            raw.setdefault(name, {}).update(values)
        return write_toml(tmp_path / "kiosk.toml", raw)

    return make


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(argv))
        sys.stdout.flush()
        out, err = capsys.readouterr()
        return status, out, err

    return run


ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 20.0


@pytest.fixture
def kiosk_run() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(config: Path, *, stdin: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env["PYTHONPATH"] = str(ROOT)
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def journal_outcomes(journal_path: str, tx: str, proc: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kiosk run ended early"
        if Path(journal_path).exists():
            with Journal.open(journal_path) as journal:
                words = [str(o.outcome) for o in journal.outcomes() if o.tx == tx]
            if words:
                return words
        time.sleep(0.05)
    raise AssertionError(f"no outcome for {tx} in the journal in time")


@pytest.fixture(name="journal_outcomes")
def journal_outcomes_fixture() -> Callable[[str, str, subprocess.Popen[bytes]], list[str]]:
    return journal_outcomes


class Desk:
    """Scans and charges through the kiosk's flows, as the engine thread would."""

    def __init__(self, cfg: Config, backend: ReferenceBackend) -> None:
        self.cfg = cfg
        self.backend = backend

    def scan_receipt(self, token: str) -> Outcome:
        with flow_context(self.cfg) as ctx:
            if not len(ctx.keys.keys):
                ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
            scanned = classify(
                token, ctx.keys.keys, self.cfg.backend.issuer, now=ctx.clock(), clock_trusted=True
            )
            assert isinstance(scanned, Receipt), scanned
            return check_receipt(ctx, scanned)

    def charge(self, code: str, service_id: str = "classic-60") -> Outcome:
        with flow_context(self.cfg) as ctx:
            ctx.venue.refresh(ctx.client, ctx.journal, self.cfg.device.venue, now=ctx.clock())
            service = payment.service_named(ctx, service_id)
            assert service is not None
            return payment.charge(ctx, BareCode(code), service)


@pytest.fixture
def counter(kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend) -> Desk:
    """A desk on the default kiosk.toml (call ``kiosk_toml`` again first to change it)."""
    return Desk(load_config(kiosk_toml()), refbackend)


@pytest.fixture
def make_desk(refbackend: ReferenceBackend) -> Callable[[Path], Desk]:
    """``make_desk(config_path) -> Desk``: a desk on a kiosk.toml made with other sections."""
    return lambda config: Desk(load_config(config), refbackend)
