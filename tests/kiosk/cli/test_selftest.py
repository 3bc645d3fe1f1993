"""`kiosk selftest`: one line per part, the right advice on each failure, bounded in time."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import Config, load_config
from kiosk.journal import SCHEMA_VERSION, Journal
from kiosk.journal.schema import MIGRATIONS
from kiosk.selftest import FAIL, PARTS, PASS, SKIP, Drivers, PartResult, run_selftest, simulated
from refbackend import ReferenceBackend

HARDWARE = {"signals": {"led_pin": 17, "buzzer_pin": 18, "button_up": 5, "button_ok": 13}}


def results_of(cfg: Config, **drivers: Any) -> dict[str, PartResult]:
    drivers.setdefault("clock_synced", lambda: True)
    results = run_selftest(cfg, simulated(**drivers))
    assert [r.part for r in results] == list(PARTS)
    return {r.part: r for r in results}


def config(kiosk_toml: Callable[..., Path], **sections: Any) -> Config:
    return load_config(kiosk_toml(**{**HARDWARE, **sections}))


def test_every_part_passes_against_the_backend(kiosk_toml: Callable[..., Path]) -> None:
    cfg = config(kiosk_toml, scanner={"source": "serial", "port": "/dev/null-scanner"})
    Journal.open(cfg.journal.path).close()
    by_part = results_of(cfg)
    assert {p: r.status for p, r in by_part.items()} == {
        **dict.fromkeys(PARTS, PASS),
        "camera": SKIP,
    }, by_part
    assert "loop://" in by_part["scanner"].detail  # the simulated port, not the configured one
    assert "Hierontastudio Demo" in by_part["auth"].detail
    assert "1 signing key" in by_part["jwks"].detail
    assert "0 pending" in by_part["journal"].detail


def test_paused_backend_fails_with_network_advice(
    kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    cfg = config(kiosk_toml)
    refbackend.pause()
    by_part = results_of(cfg)
    assert by_part["backend"].status == FAIL
    assert "check the network" in by_part["backend"].detail and refbackend.url in (
        by_part["backend"].detail
    )
    assert (by_part["auth"].status, by_part["jwks"].status) == (SKIP, SKIP)
    assert by_part["led"].status == PASS  # one failure does not hide the other parts


def test_wrong_secret_fails_auth_with_credentials_advice(
    kiosk_toml: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = config(kiosk_toml)
    (tmp_path / "client_secret").write_text("not-the-secret")
    by_part = results_of(load_config(Path(cfg.source)))
    assert by_part["backend"].status == PASS and by_part["jwks"].status == PASS
    auth = by_part["auth"]
    assert auth.status == FAIL
    assert "backend.client_id" in auth.detail and "client_secret_file" in auth.detail
    assert "not-the-secret" not in auth.detail


def test_client_of_another_venue_fails_auth(
    kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    other = refbackend.create_venue("Toinen Studio", "Muualla 2")
    cfg = config(kiosk_toml, device={"venue": other["id"]})
    auth = results_of(cfg)["auth"]
    assert auth.status == FAIL and "device.venue" in auth.detail


def test_unknown_default_service_fails_auth(kiosk_toml: Callable[..., Path]) -> None:
    cfg = config(kiosk_toml, device={"default_service": "deep-tissue"})
    auth = results_of(cfg)["auth"]
    assert auth.status == FAIL and "'deep-tissue'" in auth.detail


def test_serial_scanner_on_a_real_pty_and_its_failures(kiosk_toml: Callable[..., Path]) -> None:
    main_fd, sub_fd = os.openpty()
    try:
        cfg = config(kiosk_toml, scanner={"source": "serial", "port": os.ttyname(sub_fd)})
        assert results_of(cfg, serial_port=None)["scanner"].status == PASS
    finally:
        os.close(sub_fd)
        os.close(main_fd)
    missing = config(kiosk_toml, scanner={"source": "serial", "port": "/dev/ttyNOPE9"})
    scanner = results_of(missing, serial_port=None)["scanner"]
    assert scanner.status == FAIL and "plug the scanner in" in scanner.detail

    def refused(port: str, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", port)

    denied = results_of(missing, serial_port=None, serial_factory=refused)["scanner"]
    assert denied.status == FAIL and "dialout" in denied.detail


def test_pins_held_by_another_program(kiosk_toml: Callable[..., Path]) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    held = LED(17, pin_factory=factory)  # as a running kiosk service would hold it
    try:
        by_part = results_of(config(kiosk_toml), pin_factory=factory)
    finally:
        held.close()
    assert by_part["led"].status == FAIL
    assert "systemctl stop kiosk" in by_part["led"].detail and "gpio" in by_part["led"].detail
    assert by_part["buzzer"].status == PASS
    # The buzzer beeped once: exactly these states (gpiozero's assert_states zips without
    # comparing lengths, so it would also pass for a pin that never changed).
    assert [s.state for s in factory.pin(18).states] == [False, True, False]


def test_parts_not_fitted_are_skipped(kiosk_toml: Callable[..., Path]) -> None:
    cfg = config(kiosk_toml, signals={"led_pin": -1, "buzzer_pin": -1, "button_up": -1,
                                      "button_ok": -1}, scanner={"source": "stdin"})  # fmt: skip
    by_part = results_of(cfg, scanner_twin=False)
    assert {p: by_part[p].status for p in ("scanner", "camera", "led", "buzzer", "buttons")} == (
        dict.fromkeys(("scanner", "camera", "led", "buzzer", "buttons"), SKIP)
    )


def test_display_and_camera_failures_say_what_to_do(kiosk_toml: Callable[..., Path]) -> None:
    from hardware.display import make_device

    class DarkCamera:
        """Opens, but never delivers a frame."""

        def read(self, timeout: float) -> None:
            return None

        def close(self) -> None:
            pass

    cfg = config(kiosk_toml, display={"driver": "sh1106", "i2c_port": 10},
                 scanner={"source": "camera"})  # fmt: skip
    by_part = results_of(cfg, display_device=make_device, camera=lambda c: DarkCamera())
    assert by_part["display"].status == FAIL and "raspi-config" in by_part["display"].detail
    assert by_part["camera"].status == FAIL and "ribbon cable" in by_part["camera"].detail
    assert by_part["scanner"].status == FAIL  # the camera is the scanner here
    good = results_of(cfg)
    assert good["camera"].status == PASS and "640x480" in good["camera"].detail


def test_a_hung_part_is_given_up_in_bounded_time(kiosk_toml: Callable[..., Path]) -> None:
    release = threading.Event()

    def hung_camera(cfg: Any) -> Any:
        release.wait(10)
        raise AssertionError("not reached")

    cfg = config(kiosk_toml, scanner={"source": "camera"})
    started = time.monotonic()
    try:
        by_part = results_of(cfg, camera=hung_camera, part_timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 5.0
    assert by_part["camera"].status == FAIL and "no answer within" in by_part["camera"].detail


def test_clock_journal_and_disk_failures(kiosk_toml: Callable[..., Path]) -> None:
    cfg = config(kiosk_toml, journal={"min_free_mb": 20})
    path = Path(cfg.journal.path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    by_part = results_of(cfg, clock_synced=lambda: False, free_bytes=lambda p: 1024)
    assert by_part["clock"].status == FAIL and "timedatectl" in by_part["clock"].detail
    assert by_part["journal"].status == FAIL and "mends it on start" in by_part["journal"].detail
    assert path.read_bytes().startswith(b"this is not")  # left where it was
    assert by_part["disk"].status == FAIL and "min_free_mb" in by_part["disk"].detail


def older_journal(path: Path, version: int) -> None:
    """A journal as a release with schema *version* left it, one upload still pending."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    for step in range(1, version + 1):
        conn.executescript(MIGRATIONS[step])
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO requests (kind, idem_key, body, created_at) VALUES ('receipt', ?, '{}', 0)",
        (str(uuid.uuid4()),),
    )
    conn.commit()
    conn.close()


def files_of(path: Path) -> dict[str, str]:
    """The journal's files (database, log, index) and their digests."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in path.parent.iterdir()
        if p.name.startswith(path.name)
    }


def test_selftest_of_a_newer_release_never_migrates_the_live_journal(
    kiosk_toml: Callable[..., Path],
) -> None:
    cfg = config(kiosk_toml)
    path = Path(cfg.journal.path)
    older_journal(path, SCHEMA_VERSION - 1)
    before = files_of(path)
    journal = results_of(cfg)["journal"]
    assert journal.status == PASS, journal.detail
    assert "1 pending" in journal.detail
    assert f"schema {SCHEMA_VERSION - 1} becomes {SCHEMA_VERSION}" in journal.detail
    assert files_of(path) == before  # not migrated, not written, nothing left beside it
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION - 1,)
    conn.close()


def test_selftest_of_an_older_release_fails_on_a_newer_journal_and_leaves_it(
    kiosk_toml: Callable[..., Path],
) -> None:
    cfg = config(kiosk_toml)
    path = Path(cfg.journal.path)
    older_journal(path, SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = files_of(path)
    journal = results_of(cfg)["journal"]
    assert journal.status == FAIL and "newer than this kiosk" in journal.detail
    assert files_of(path) == before


def test_journal_not_created_yet_is_probed_without_creating_it(
    kiosk_toml: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = config(kiosk_toml, journal={"path": str(tmp_path / "journal.db")})
    journal = results_of(cfg)["journal"]
    assert journal.status == PASS and "not created yet" in journal.detail
    assert not (tmp_path / "journal.db").exists()
    gone = config(kiosk_toml, journal={"path": str(tmp_path / "no" / "such" / "journal.db")})
    journal = results_of(gone)["journal"]
    assert journal.status == FAIL and "StateDirectory" in journal.detail


def test_cli_simulate_json_and_text(
    cli: Any, kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    path = kiosk_toml(**HARDWARE)
    Journal.open(load_config(path).journal.path).close()
    code, out, _ = cli("selftest", "--config", str(path), "--simulate", "--json")
    doc = json.loads(out)
    assert set(doc) == {"results", "ok"}
    assert [r["part"] for r in doc["results"]] == list(PARTS)
    assert all(set(r) == {"part", "status", "detail"} for r in doc["results"])
    failed = {r["part"] for r in doc["results"] if r["status"] == FAIL}
    assert failed <= {"clock"}  # the machine's own clock is checked for real
    assert code == (1 if failed else 0) and doc["ok"] is not failed

    refbackend.pause()
    code, out, _ = cli("selftest", "--config", str(path), "--simulate")
    lines = out.strip().splitlines()
    assert code == 1
    assert [line.split()[:2] for line in lines[:-1]][6] == ["FAIL", "backend"]
    assert all(line.split()[0] in (PASS, FAIL, SKIP) for line in lines[:-1])
    assert len(lines) == len(PARTS) + 1 and lines[-1].startswith("selftest:")


def test_drivers_default_to_the_real_devices() -> None:
    d = Drivers()
    assert d.pin_factory is None and d.serial_port is None and not d.simulated


@pytest.fixture(autouse=True)
def _fast_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LED flash and beep last 0.2 s on a kiosk; tests need no human to see them."""
    import kiosk.selftest.devices

    monkeypatch.setattr(kiosk.selftest.devices, "FLASH_S", 0.01)


def test_hid_scanner_permission_advice(kiosk_toml: Callable[..., Path]) -> None:
    class NoAccess:
        """An evdev stand-in whose device node this user may not open."""

        @staticmethod
        def InputDevice(path: str) -> Any:
            raise PermissionError(13, "Permission denied", path)

    cfg = config(kiosk_toml, scanner={"source": "hid", "hid_device": "/dev/input/event7"})
    scanner = results_of(cfg, scanner_twin=False, evdev_module=NoAccess)["scanner"]
    assert scanner.status == FAIL and "input group" in scanner.detail


def test_serial_scanner_held_by_the_running_service_fails_with_advice(
    kiosk_toml: Callable[..., Path],
) -> None:
    """A selftest must not read (or flush) the port the service reads: codes would be lost."""
    import queue

    from hardware.serial_scanner import SerialScanner

    main_fd, sub_fd = os.openpty()
    port = os.ttyname(sub_fd)
    read: queue.Queue[Any] = queue.Queue()
    service = SerialScanner(port, line_timeout=0.5, on_event=read.put)
    service.start()
    try:
        deadline = time.monotonic() + 5.0
        while not service.connected:
            assert time.monotonic() < deadline and read.empty(), list(read.queue)
            time.sleep(0.01)
        cfg = config(kiosk_toml, scanner={"source": "serial", "port": port})
        scanner = results_of(cfg, serial_port=None)["scanner"]
        assert scanner.status == FAIL, scanner
        assert "in use by another program" in scanner.detail
        assert "stop the kiosk service while testing" in scanner.detail
        os.write(main_fd, b"AFTER-SELFTEST\r\n")
        scan = read.get(timeout=5.0)
        assert (scan.text, service.connected) == ("AFTER-SELFTEST", True)
    finally:
        service.stop()
        os.close(sub_fd)
        os.close(main_fd)


def test_camera_and_serial_scanner_are_each_checked(kiosk_toml: Callable[..., Path]) -> None:
    main_fd, sub_fd = os.openpty()
    port = os.ttyname(sub_fd)
    try:
        both = config(kiosk_toml, scanner={"source": ["camera", "serial"], "port": port})
        by_part = results_of(both, serial_port=None)
    finally:
        os.close(sub_fd)
        os.close(main_fd)
    assert by_part["scanner"].status == PASS and port in by_part["scanner"].detail
    assert by_part["camera"].status == PASS and "frames" in by_part["camera"].detail
    # The scanner unplugged: its line fails, the camera's still passes.
    unplugged = config(kiosk_toml, scanner={"source": ["camera", "serial"],
                                            "port": "/dev/ttyNOPE9"})  # fmt: skip
    by_part = results_of(unplugged, serial_port=None)
    assert by_part["scanner"].status == FAIL and "plug the scanner in" in by_part["scanner"].detail
    assert by_part["camera"].status == PASS


def test_two_scanners_give_two_scanner_lines(kiosk_toml: Callable[..., Path]) -> None:
    cfg = config(kiosk_toml, scanner={"source": ["serial", "hid"]})
    results = run_selftest(cfg, simulated(clock_synced=lambda: True))
    scanners = [r for r in results if r.part == "scanner"]
    assert [r.status for r in scanners] == [PASS, PASS]
    assert "loop://" in scanners[0].detail and "stands in for hid" in scanners[1].detail
    assert [r.part for r in results if r.part != "scanner"] == [p for p in PARTS if p != "scanner"]


def test_replay_camera_folder_is_checked(kiosk_toml: Callable[..., Path], tmp_path: Path) -> None:
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("L", (320, 240), 200).save(frames / "0001.png")
    cfg = config(kiosk_toml, scanner={"source": ["replay", "serial"]},
                 camera={"replay_dir": str(frames)})  # fmt: skip
    by_part = results_of(cfg)
    assert by_part["camera"].status == PASS and "320x240" in by_part["camera"].detail
    assert by_part["scanner"].status == PASS and "loop://" in by_part["scanner"].detail
    (frames / "0001.png").write_bytes(b"not an image")
    broken = results_of(cfg)["camera"]
    assert broken.status == FAIL and "camera.replay_dir" in broken.detail
