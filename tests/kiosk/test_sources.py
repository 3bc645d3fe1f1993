"""Input source kinds: one registry; the config, the service unit and the selftest follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.selftest import base
from kiosk.selftest import sources as devices
from kiosk.source_kinds import SOURCE_KINDS, SourceKind, event_source, needs
from kiosk.sources import spec

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "kiosk.service"


def _unit_values(key: str) -> list[str]:
    lines = [ln.strip() for ln in UNIT.read_text().splitlines()]
    return [ln.partition("=")[2].strip() for ln in lines if ln.startswith(f"{key}=")]


def _config(tmp_path: Path, sources: str, extra: str = "") -> Path:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[device]\nid = "k1"\nvenue = "ven_1"\n'
        '[backend]\nurl = "https://api.example"\nclient_id = "k1"\n'
        f'client_secret_file = "{secret}"\nissuer = "https://issuer.example"\n'
        f"[scanner]\nsource = {sources}\n{extra}"
    )
    return path


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_the_service_unit_grants_every_source_its_groups_and_devices(kind: SourceKind) -> None:
    entry = needs(kind)
    groups = set(_unit_values("SupplementaryGroups")[0].split())
    allowed = {v.split()[0] for v in _unit_values("DeviceAllow")}
    assert set(entry.groups) <= groups, kind
    assert set(entry.devices) <= allowed, kind
    if entry.rules:
        assert (ROOT / "config" / entry.rules).is_file(), kind


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_configurable_source_is_accepted_and_kept_as_its_kind(
    tmp_path: Path, kind: SourceKind
) -> None:
    replay = '[camera]\nreplay_dir = "/tmp"\n' if kind is SourceKind.REPLAY else ""
    cfg = load_config(_config(tmp_path, f'"{kind}"', replay))
    assert cfg.scanner.sources == (kind,) and cfg.scanner.source is kind


def test_an_unknown_source_cannot_be_configured(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, '["serial", "nfc"]'))
    (problem,) = info.value.problems
    assert problem.endswith(
        "scanner.source: list item 'nfc': must be one of serial, camera, hid, stdin, replay;"
        " got 'nfc'"
    )


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_the_camera_pipeline_sources_and_only_they_have_a_frame_check(kind: SourceKind) -> None:
    assert spec(kind).needs == needs(kind)
    assert (spec(kind).frames_check is not None) is needs(kind).camera


def test_replay_sends_camera_events_and_each_other_kind_its_own_name() -> None:
    assert event_source(SourceKind.REPLAY) == "camera"
    for kind in set(SourceKind) - {SourceKind.REPLAY}:
        assert event_source(kind) == kind.value


def test_only_the_camera_pipeline_has_a_camera_line(tmp_path: Path) -> None:
    path = _config(tmp_path, '["hid", "replay", "serial"]', '[camera]\nreplay_dir = "/tmp"\n')
    cfg = load_config(path)
    assert devices.scanner_sources(cfg) == (SourceKind.HID, SourceKind.SERIAL)
    assert devices.camera_source(cfg) is SourceKind.REPLAY


def test_each_scanner_is_selftested_by_its_own_check(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, '["stdin", "hid"]'))
    camera = base.PartResult("camera", base.SKIP, "not used")
    real = base.Drivers()
    stdin = devices.check_scanner(cfg, real, camera, SourceKind.STDIN)
    assert (stdin.status, stdin.detail) == (
        base.SKIP,
        "source stdin: codes are typed in; nothing to open",
    )
    twin = base.simulated()
    hid = devices.check_scanner(cfg, twin, camera, SourceKind.HID)
    assert hid.status == base.PASS and "stands in for hid" in hid.detail


def _example_choices(key: str) -> list[str]:
    """The ``a | b | c`` list in the example configuration's comment on *key*."""
    text = (ROOT / "config" / "kiosk.example.toml").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{key} = "))
    comment = line.partition("#")[2]
    return [w.strip().split()[0] for w in comment.split("|")]


def test_the_example_configuration_names_every_source_and_language() -> None:
    from kiosk.languages import LANGUAGES

    assert _example_choices("source") == list(SOURCE_KINDS)
    assert _example_choices("language") == list(LANGUAGES)
