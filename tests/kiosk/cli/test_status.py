"""`kiosk status`: health as text or one JSON document (contract keys and values)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from refbackend import DEMO_VENUE, ReferenceBackend

CONTRACT_KEYS = {"online", "pending", "offline_exposure_cents", "last_sync", "clock_synced"}


def status_json(cli: Any, config: Path) -> dict[str, Any]:
    code, out, _ = cli("status", "--config", str(config), "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON document and nothing else on stdout
    assert isinstance(doc, dict)
    return doc


def test_status_json_fresh_kiosk_online(cli: Any, kiosk_toml: Callable[..., Path]) -> None:
    doc = status_json(cli, kiosk_toml())
    assert doc.keys() >= CONTRACT_KEYS
    assert doc["online"] is True
    assert (doc["pending"], doc["offline_exposure_cents"], doc["last_sync"]) == (0, 0, None)
    assert isinstance(doc["clock_synced"], bool)
    assert isinstance(doc["journal_bytes"], int)


def test_status_json_after_offline_acceptance(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    config = Path(counter.cfg.source)
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    _, token = refbackend.mint_receipt(DEMO_VENUE, 4500)
    refbackend.pause()
    assert counter.scan_receipt(token).word == "checked_offline"
    doc = status_json(cli, config)
    assert doc["online"] is False and doc["backend_problem"]
    assert (doc["pending"], doc["offline_exposure_cents"], doc["offline_count"]) == (1, 4500, 1)
    synced = datetime.strptime(doc["last_sync"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - synced) < timedelta(minutes=1)
    refbackend.resume()
    code, _out, _ = cli("sync", "--config", str(config))
    assert code == 0
    doc = status_json(cli, config)
    assert doc["online"] is True
    assert (doc["pending"], doc["offline_exposure_cents"]) == (0, 0)


def test_status_text_names_the_problem(
    cli: Any, kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml()
    refbackend.pause()
    code, out, _err = cli("status", "--config", str(config))
    assert code == 0
    assert "backend:   OFFLINE" in out
    assert "last sync: never" in out


# --- common to every command -----------------------------------------------------------------


def test_version(cli: Any) -> None:
    from kiosk import __version__

    code, out, _ = cli("--version")
    assert (code, out.strip()) == (0, f"kiosk {__version__}")


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["sync"],
        ["history", "--local", "--json"],
        ["cancel", "tx_0000000000000000", "--reason", "x"],
        ["selftest", "--simulate", "--json"],
    ],
)
def test_bad_config_lists_every_problem(cli: Any, tmp_path: Path, argv: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[device]\nid = "counter 1"\nvenue = "ven_demo0000000000"\ncolour = "red"\n'
        '[backend]\nurl = "ftp://x"\nclient_id = "c"\nclient_secret_file = "missing"\n'
        'issuer = "i"\n[scanner]\nbaud = 0\n',
        encoding="utf-8",
    )
    code, out, err = cli(*argv, "--config", str(bad))
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    for key in ("device.id", "device.colour", "backend.url", "client_secret_file", "scanner.baud"):
        assert sum(key in line for line in lines) == 1, (key, lines)
    assert all(line.startswith(str(bad)) for line in lines)


def test_missing_config_file(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli("status", "--config", str(tmp_path / "nope.toml"))
    assert (code, out) == (2, "")
    assert "file not found" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--json"],
        ["sync", "--json"],
        ["history", "--local", "--json"],
        ["history", "--json"],
        ["selftest", "--simulate", "--json"],
    ],
)
def test_json_commands_print_one_document_only(
    cli: Any, counter: Any, refbackend: ReferenceBackend, argv: list[str]
) -> None:
    counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1])
    code, out, _ = cli(*argv, "--config", counter.cfg.source)
    assert code in (0, 1)
    decoder = json.JSONDecoder()
    doc, end = decoder.raw_decode(out)
    assert isinstance(doc, dict) and out[end:].strip() == ""


def test_status_reports_each_source_as_the_service_last_saw_it(
    cli: Any, kiosk_toml: Callable[..., Path]
) -> None:
    from kiosk.config import load_config
    from kiosk.source_states import SourceReport

    config = kiosk_toml(scanner={"source": ["camera", "serial"]})
    fresh = status_json(cli, config)
    assert (fresh["sources"], fresh["sources_at"]) == ([], None)  # kiosk run never ran here
    report = SourceReport(load_config(config), clock=lambda: 1_764_480_000.0)
    both_ok = [
        {"name": "camera", "ok": True, "detail": ""},
        {"name": "serial", "ok": True, "detail": ""},
    ]
    report.report(both_ok)
    assert status_json(cli, config)["sources"] == both_ok
    unplugged = {"name": "serial", "ok": False, "detail": "/dev/ttyACM0 not connected (unplugged?)"}
    report.report([both_ok[0], unplugged])
    doc = status_json(cli, config)
    assert doc["sources"] == [both_ok[0], unplugged]
    assert doc["sources_at"] == "2025-11-30T05:20:00Z"
    code, out, _ = cli("status", "--config", str(config))
    assert code == 0
    assert "source:    camera ok" in out
    assert "source:    serial FAIL: /dev/ttyACM0 not connected" in out
    report.close()  # kiosk run stops: no source is read any more
    stopped = status_json(cli, config)["sources"]
    assert [(s["name"], s["ok"], s["detail"]) for s in stopped] == [
        ("camera", False, "kiosk run is stopped"),
        ("serial", False, "kiosk run is stopped"),
    ]
