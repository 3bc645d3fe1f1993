"""The device test's ``memory-modes`` pieces, run here: every mode's kiosk.toml is one
the kiosk accepts, the guest's script is valid shell, and the serial kiosk's feed
writes its receipts through a real pseudo-terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
from modes import FEED, MODES, mode_toml, sample_script
from run import kiosk_toml

from kiosk.config import load_config


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_config_is_accepted_by_the_kiosk(tmp_path: Path, mode: str) -> None:
    state = tmp_path / mode
    state.mkdir()
    (tmp_path / "frames").mkdir()
    vm_toml = kiosk_toml("kiosk-modes", "/dev/ttyAMA0", '["camera", "serial"]')
    path = state / "kiosk.toml"
    path.write_text(mode_toml(vm_toml, mode, str(state), str(tmp_path / "frames")))

    config = load_config(path, read_secret=False)

    expected = {"serial": "serial", "hid": "hid", "camera": "replay"}[mode]
    assert [str(s) for s in config.scanner.sources] == [expected]
    assert str(config.journal.path) == str(state / "journal.db")
    if mode == "serial":
        assert config.scanner.port == str(state / "scanner")


@pytest.mark.parametrize("mode", MODES)
def test_guest_script_is_valid_shell(mode: str) -> None:
    script = sample_script(f"/var/tmp/kiosk-modes/{mode}", mode)

    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)

    assert checked.returncode == 0, checked.stderr
    assert (f"python3 /var/tmp/kiosk-modes/{mode}/feed.py" in script) == (mode == "serial")


def test_serial_feed_writes_each_receipt_through_a_pty(tmp_path: Path) -> None:
    (tmp_path / "feed.py").write_text(FEED)
    (tmp_path / "tokens").write_text("first.receipt\nsecond.receipt\nthird.receipt\n")
    link = tmp_path / "scanner"
    feed = subprocess.Popen(
        [sys.executable, tmp_path / "feed.py", link, tmp_path / "tokens", "0.05", "0.3"]
    )
    try:
        deadline = time.monotonic() + 10
        while not link.exists():
            assert time.monotonic() < deadline, "the feed never linked its port"
            time.sleep(0.02)
        port = os.open(link, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(port)
        got = b""
        while got.count(b"\r\n") < 3 and time.monotonic() < deadline:
            if select.select([port], [], [], 0.5)[0]:
                got += os.read(port, 1024)
        os.close(port)
    finally:
        feed.kill()
        feed.wait()

    assert got.split(b"\r\n")[:3] == [b"first.receipt", b"second.receipt", b"third.receipt"]
