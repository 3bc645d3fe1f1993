"""Selftest checks of the backend, keys, clock, journal and disk."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.config import Config
from kiosk.errors import (
    BackendAuthError,
    BackendError,
    BackendUnreachable,
    JournalCorrupt,
    JournalError,
)

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient

from kiosk.selftest.base import (
    FAIL,
    PASS,
    SKIP,
    Drivers,
    PartResult,
    existing_parent,
)


def check_backend(cfg: Config, d: Drivers) -> list[PartResult]:
    """Reachability, then the kiosk's credentials and venue, then the key set."""
    from kiosk.tokens import KeySet

    url = cfg.backend.url
    with d.client_factory(cfg) as client:
        try:
            document = client.fetch_jwks()
        except BackendUnreachable as exc:
            reach = PartResult(
                "backend",
                FAIL,
                f"{url} not reachable ({exc}); check the network (Wi-Fi, cable), backend.url "
                "and any firewall; the counter keeps working offline within [offline] limits",
            )
            skipped = "not checked: the backend is not reachable"
            return [reach, PartResult("auth", SKIP, skipped), PartResult("jwks", SKIP, skipped)]
        except BackendError as exc:
            reach = PartResult("backend", PASS, f"{url} answers")
            jwks = PartResult(
                "jwks",
                FAIL,
                f"{exc}; backend.url must be the payment backend serving "
                "/.well-known/jwks.json with Ed25519 keys",
            )
        else:
            reach = PartResult("backend", PASS, f"{url} answers")
            jwks = PartResult("jwks", PASS, f"{len(KeySet.from_jwks(document))} signing key(s)")
        return [reach, _check_auth(cfg, client), jwks]


def _check_auth(cfg: Config, client: BackendClient) -> PartResult:
    venue = cfg.device.venue
    try:
        info = client.get_venue(venue)
    except BackendAuthError as exc:
        return PartResult(
            "auth",
            FAIL,
            f"{exc} (client {cfg.backend.client_id!r}, venue {venue}); check backend.client_id, "
            "the secret in backend.client_secret_file and device.venue",
        )
    except BackendError as exc:
        return PartResult("auth", FAIL, f"{exc}; try again, then check backend.url")
    detail = f"client {cfg.backend.client_id!r} may use {venue} ({info.name}), "
    detail += f"{len(info.services)} service(s)"
    default = cfg.device.default_service
    if default and default not in {s.id for s in info.services}:
        return PartResult(
            "auth", FAIL, f"{detail}; device.default_service {default!r} is not one of them"
        )
    return PartResult("auth", PASS, detail)


def check_clock(d: Drivers) -> PartResult:
    if d.clock_synced():
        return PartResult("clock", PASS, "synchronised (NTP)")
    return PartResult(
        "clock",
        FAIL,
        "not synchronised: payment-code expiry is left to the backend; enable time sync with "
        "`sudo timedatectl set-ntp true` and check `timedatectl status` (needs the network)",
    )


_JOURNAL_HELP = (
    "the folder must exist and belong to the kiosk user (systemd StateDirectory=kiosk); "
    "run the selftest as that user: `sudo -u kiosk kiosk selftest`"
)


def check_journal(cfg: Config) -> PartResult:
    """Open a copy of the journal as ``kiosk run`` of this release would; the journal itself
    is only read.

    The live file is never migrated here (an update runs the new release's selftest
    before it switches: a migrated journal would strand the release that keeps
    running), never moved aside (a damaged journal is reported, and ``kiosk run``
    repairs it on start), and never created: a journal not yet created is probed with
    a temporary file, so running the selftest as root leaves nothing the service may
    not write.
    """
    from kiosk.journal import SCHEMA_VERSION
    from kiosk.journal.snapshot import inspect

    path = Path(cfg.journal.path)
    if not path.exists():
        folder = existing_parent(path.parent)
        if folder != path.parent:
            return PartResult(
                "journal", FAIL, f"folder {path.parent} does not exist; {_JOURNAL_HELP}"
            )
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".kiosk-selftest-"):
                pass
        except OSError as exc:
            return PartResult(
                "journal", FAIL, f"cannot write in {folder}: {exc.strerror}; {_JOURNAL_HELP}"
            )
        return PartResult("journal", PASS, f"{path} not created yet; its folder is writable")
    if not os.access(path, os.W_OK):
        return PartResult("journal", FAIL, f"{path} is not writable by this user; {_JOURNAL_HELP}")
    try:
        found = inspect(path)
    except JournalCorrupt as exc:
        return PartResult(
            "journal",
            FAIL,
            f"{exc}; `kiosk run` mends it on start (an index is rebuilt; else the readable"
            " rows are salvaged into a new journal and the old file kept)",
        )
    except JournalError as exc:
        return PartResult("journal", FAIL, f"{exc}; " + _JOURNAL_HELP)
    detail = f"{path} writable ({found.size_bytes} bytes, {found.pending} pending)"
    if found.migrates:
        detail += (
            f"; schema {found.version} becomes {SCHEMA_VERSION} when this release starts"
            " (tried on a copy)"
        )
    return PartResult("journal", PASS, detail)


def check_disk(cfg: Config, d: Drivers) -> PartResult:
    folder = existing_parent(Path(cfg.journal.path).parent)
    free = d.free_bytes(folder)
    need = cfg.journal.min_free_mb * 1024 * 1024
    text = f"{free // (1024 * 1024)} MB free on {folder}"
    text += f" (journal.min_free_mb = {cfg.journal.min_free_mb})"
    if free >= need:
        return PartResult("disk", PASS, text)
    return PartResult(
        "disk",
        FAIL,
        f"{text}; new scans are refused below the minimum: free space "
        "(`sudo journalctl --vacuum-size=50M`, old files) or use a larger SD card",
    )
