"""`kiosk run`: the service loop in the foreground (what systemd starts)."""

from __future__ import annotations

import argparse
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the kiosk service loop in the foreground")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.libc import limit_malloc_arenas

    limit_malloc_arenas()  # first: before any thread (camera, engine, sync...) allocates
    from kiosk.backend.http_stack import without_charset_guessing

    without_charset_guessing()  # before requests is imported: 3-4 MB the kiosk never uses
    from kiosk.config import env_path, load_config
    from kiosk.logs import mask_secret, setup_logging
    from kiosk.service import run as run_service

    cfg = load_config(args.config or env_path())
    setup_logging(cfg.log.level, device=cfg.device.id, venue=cfg.device.venue)
    mask_secret(cfg.client_secret.reveal())
    return run_service(cfg)
