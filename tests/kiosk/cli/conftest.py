"""Command-line fixtures: a kiosk.toml against the reference backend, and ways to fill its journal.

- ``kiosk_toml``: ``kiosk_toml(**sections) -> Path``, a config file (secret file mode 0600,
  journal in tmp, no display, stdin scanner, no pins, no metrics file) for
  ``refbackend``/``demo_client``.
- ``cli``: ``cli(*argv) -> (status, stdout, stderr)`` through ``kiosk.cli.main`` in-process.
- ``counter``: a :class:`Desk` that scans receipts and charges codes through the real flows,
  with the same journal and backend the commands use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import main
from kiosk.cli._common import flow_context
from kiosk.config import Config, load_config
from kiosk.flows import payment
from kiosk.flows.receipt import check_receipt
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
