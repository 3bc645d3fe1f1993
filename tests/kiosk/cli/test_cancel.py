"""`kiosk cancel TX --reason`: 0 cancelled, 1 refused by the backend, 2 bad usage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend


class BackendClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def backend_clock() -> BackendClock:
    return BackendClock()


@pytest.fixture
def refbackend(tmp_path: Path, backend_clock: BackendClock) -> Iterator[ReferenceBackend]:
    with ReferenceBackend(tmp_path / "backend.db", port=0, dev=True, clock=backend_clock) as b:
        yield b


def test_cancel_same_day_receipt(cli: Any, counter: Any, refbackend: ReferenceBackend) -> None:
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    code, out, err = cli("cancel", tx, "--reason", "customer changed mind", "--config",
                         counter.cfg.source)  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"{tx}: cancelled"
    with Journal.open(counter.cfg.journal.path) as journal:
        assert journal.last_request_for("cancel", tx).status == "cancelled"  # type: ignore[union-attr]
    code, _, err = cli("cancel", tx, "--reason", "again", "--config", counter.cfg.source)
    assert code == 1 and "already_cancelled" in err


def test_cancel_of_yesterdays_check_is_refused(
    cli: Any, counter: Any, refbackend: ReferenceBackend, backend_clock: BackendClock
) -> None:
    backend_clock.offset = -2 * 86400.0
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    backend_clock.offset = 0.0
    code, out, err = cli("cancel", tx, "--reason", "too late", "--config", counter.cfg.source)
    assert (code, out) == (1, "")
    assert "not_same_day" in err and "Traceback" not in err


def test_cancel_unknown_transaction(cli: Any, counter: Any) -> None:
    code, _, err = cli("cancel", "tx_0000000000000000", "--reason", "x", "--config",
                       counter.cfg.source)  # fmt: skip
    assert code == 1 and "not_found" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["cancel", "tx_short", "--reason", "x"],
        ["cancel", "pc_0000000000000000", "--reason", "x"],
        ["cancel", "tx_0000000000000000", "--reason", "   "],
        ["cancel", "tx_0000000000000000"],
    ],
)
def test_cancel_usage_errors(cli: Any, counter: Any, argv: list[str]) -> None:
    code, out, err = cli(*argv, "--config", counter.cfg.source)
    assert (code, out) == (2, "")
    assert err.strip()


def test_cancel_while_backend_down_needs_network(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    refbackend.pause()
    code, _, err = cli("cancel", tx, "--reason", "x", "--config", counter.cfg.source)
    assert code == 1 and "not cancelled" in err


def test_cancel_reason_that_is_not_utf8_text_is_refused(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    latin1 = b"asiakas perui, ty\xf6ntekij\xe4".decode("utf-8", "surrogateescape")  # as argv
    code, out, err = cli("cancel", tx, "--reason", latin1, "--yes", "--config",
                         counter.cfg.source)  # fmt: skip
    assert (code, out) == (2, "")
    assert "not valid UTF-8" in err and "Traceback" not in err
    with Journal.open(counter.cfg.journal.path) as journal:
        assert journal.last_request_for("cancel", tx) is None  # nothing journaled, nothing sent
