"""Helpers shared by the subcommands: config loading, a flow context, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.config import Config
    from kiosk.flows.context import FlowContext


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default $KIOSK_CONFIG or /etc/kiosk/kiosk.toml)",
    )


def load(args: argparse.Namespace) -> Config:
    """Load the configuration named by --config. Raises ConfigError (exit 2)."""
    from kiosk.config import env_path, load_config
    from kiosk.logs import mask_secret, setup_logging

    cfg = load_config(args.config or env_path())
    setup_logging(os.environ.get("KIOSK_LOG_LEVEL", "warning"))
    mask_secret(cfg.client_secret.reveal())
    return cfg


@contextmanager
def flow_context(cfg: Config) -> Iterator[FlowContext]:
    """A journal connection and backend client for a one-shot command.

    A damaged journal is reported (JournalCorrupt, exit 1) and left in place: the
    running service may have it open, and only the service moves it aside.
    """
    from kiosk.clock import kernel_clock_synced
    from kiosk.errors import JournalCorrupt
    from kiosk.flows.context import default_client, open_context

    try:
        ctx = open_context(
            cfg, client_factory=default_client, clock_synced=kernel_clock_synced, recover=False
        )
    except JournalCorrupt as exc:
        raise JournalCorrupt(
            f"{exc}; {cfg.journal.path} is left in place: restart the service"
            " (systemctl restart kiosk) to move it aside and start a fresh journal"
        ) from exc
    try:
        yield ctx
    finally:
        try:
            ctx.client.close()
        finally:
            ctx.journal.close()


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def iso(ts: float | None) -> str | None:
    """Unix time as RFC 3339 UTC, or None."""
    if ts is None:
        return None
    from kiosk.backend._wire import format_time

    return format_time(datetime.fromtimestamp(ts, UTC))


def parse_since(text: str | None, tz_name: str) -> datetime | None:
    """--since as RFC 3339, or a date (local midnight), or 'today'."""
    from zoneinfo import ZoneInfo

    if text is None:
        return None
    tz = ZoneInfo(tz_name)
    if text == "today":
        return datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(_usage(f"--since: not a date or RFC 3339 time: {text!r}")) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def _usage(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
