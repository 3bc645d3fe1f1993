"""`kiosk backend`: serve the reference payment backend until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("kiosk-backend.db")
DEFAULT_PORT = 8787


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backend",
        help="run the reference payment backend (for demos, tests and trials)",
        description=(
            "Serve the reference payment backend (backend-api contract) over HTTP. "
            "State lives in an SQLite file; its signing key beside it in <db>.key (0600). "
            "Stops cleanly on SIGTERM or Ctrl-C."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"database file ({DEFAULT_DB})")
    p.add_argument("--dev", action="store_true", help="enable /dev endpoints (loopback only)")
    p.add_argument("--issuer", default=None, help="iss claim of the tokens it signs")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host without TLS (trials on a closed LAN only)",
    )
    p.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS: certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="private key of --tls-cert (PEM)")
    p.add_argument(
        "--dev-allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="also answer /dev endpoints for clients in this network (repeatable; "
        "default loopback only), e.g. a forwarded 10.0.2.2/32",
    )
    p.set_defaults(func=run)


def _is_loopback_host(host: str) -> bool:
    from refbackend.dev import is_loopback

    return host == "localhost" or is_loopback(host)


def _fail(message: str, code: int = 2) -> int:
    print(f"kiosk backend: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from refbackend import DEFAULT_ISSUER, BackendError, ReferenceBackend, tls_context

    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together; give both or neither")
    tls = args.tls_cert is not None
    if not _is_loopback_host(args.host) and not args.allow_remote and not tls:
        return _fail(
            f"refusing to listen on {args.host}: without --tls-cert/--tls-key the reference "
            "backend speaks plain HTTP and is meant for this machine only. Use --host "
            "127.0.0.1, serve HTTPS, or add --allow-remote to expose it on a network you trust."
        )
    if not 0 <= args.port <= 65535:
        print(f"kiosk backend: --port {args.port} is not a TCP port (0-65535)", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
        )
    logging.getLogger("refbackend").setLevel(logging.INFO)
    try:
        context = tls_context(args.tls_cert, args.tls_key) if tls else None
        backend = ReferenceBackend(
            args.db,
            host=args.host,
            port=args.port,
            dev=args.dev,
            issuer=args.issuer or DEFAULT_ISSUER,
            tls=context,
            dev_allow=tuple(args.dev_allow),
        )
        backend.start()
    except ValueError as exc:
        return _fail(f"{exc}; give --dev-allow as a network such as 10.0.2.0/24")
    except BackendError as exc:
        return _fail(str(exc), 1)
    mode = "dev endpoints on" if args.dev else "dev endpoints off"
    print(
        f"kiosk backend: serving {backend.url} (issuer {backend.issuer}, kid {backend.kid}, "
        f"{mode}, db {args.db}); Ctrl-C stops",
        flush=True,
    )
    backend.serve_forever()
    print("kiosk backend: stopped", flush=True)
    return 0
