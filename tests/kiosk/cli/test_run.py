"""`kiosk run` as systemd starts it: a real process, codes on stdin, SIGTERM, clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.config import load_config
from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 20.0


def wait_for_outcome(journal_path: str, tx: str, proc: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kiosk run ended early"
        if Path(journal_path).exists():
            with Journal.open(journal_path) as journal:
                words = [o.outcome for o in journal.outcomes() if o.tx == tx]
            if words:
                return words
        time.sleep(0.05)
    raise AssertionError("no outcome in the journal in time")


def test_run_checks_a_receipt_from_stdin_and_stops_on_sigterm(
    kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(scanner={"source": "stdin"}, log={"level": "info"})
    journal_path = load_config(config).journal.path
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.flush()
        assert wait_for_outcome(journal_path, tx, proc) == ["checked"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert token not in text  # only tx ids are logged
    with Journal.open(journal_path) as journal:
        assert journal.pending_count() == 0


def _frames(folder: Path, shown: list[tuple[str | None, int]]) -> None:
    """A replay folder: each (code or None for an empty counter, frame count) in turn."""
    import io

    import segno
    from PIL import Image

    folder.mkdir()
    n = 0
    for text, count in shown:
        canvas = Image.new("L", (360, 360), 255)
        if text is not None:
            buf = io.BytesIO()
            segno.make(text, error="m").save(buf, kind="png", scale=2, border=4)
            with Image.open(io.BytesIO(buf.getvalue())) as qr:
                canvas.paste(qr.convert("L"), (10, 10))
        out = io.BytesIO()
        canvas.save(out, format="PNG")
        data = out.getvalue()
        for _ in range(count):
            n += 1
            (folder / f"{n:05d}.png").write_bytes(data)


def _outcomes(journal_path: str) -> list[tuple[str | None, str]]:
    with Journal.open(journal_path) as journal:
        return [(o.tx, o.outcome) for o in reversed(journal.outcomes())]


def _wait_for(journal_path: str, tx: str, proc: subprocess.Popen[bytes]) -> None:
    assert wait_for_outcome(journal_path, tx, proc) == ["checked"], _outcomes(journal_path)


def test_run_with_camera_and_serial_scanner_counts_each_code_once(
    kiosk_toml: Callable[..., Path],
    refbackend: ReferenceBackend,
    tmp_path: Path,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    import json

    both_tx, both = refbackend.mint_receipt(DEMO_VENUE, 6500)  # shown to both
    serial_tx, serial_only = refbackend.mint_receipt(DEMO_VENUE, 5500)
    camera_tx, camera_only = refbackend.mint_receipt(DEMO_VENUE, 6500)
    # The camera (10 frames/s) sees the first receipt for 3 s, an empty counter for 9 s,
    # then the third receipt.
    _frames(tmp_path / "frames", [(both, 30), (None, 90), (camera_only, 600)])
    main_fd, sub_fd = os.openpty()
    port = os.ttyname(sub_fd)
    os.close(sub_fd)  # the kiosk opens the port itself
    config = kiosk_toml(
        scanner={"source": ["replay", "serial"], "port": port},
        camera={"replay_dir": str(tmp_path / "frames"), "fps": 10.0},
        log={"level": "info"},
    )
    journal_path = load_config(config).journal.path
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )

    def sources() -> list[tuple[str, bool]]:
        code, out, _ = cli("status", "--config", str(config), "--json")
        assert code == 0
        return [(s["name"], s["ok"]) for s in json.loads(out)["sources"]]

    try:
        _wait_for(journal_path, both_tx, proc)  # the camera read it first
        # The scanner reads the same receipt while the camera still sees it: one scan.
        os.write(main_fd, both.encode() + b"\r\n")
        time.sleep(1.0)  # handled on its own (not dropped as stale behind the next code)
        os.write(main_fd, serial_only.encode() + b"\r\n")
        _wait_for(journal_path, serial_tx, proc)
        assert sources() == [("replay", True), ("serial", True)]
        os.close(main_fd)  # the scanner is unplugged
        main_fd = -1
        deadline = time.monotonic() + WAIT_S
        while sources() != [("replay", True), ("serial", False)]:
            assert time.monotonic() < deadline, sources()
            time.sleep(0.2)
        _wait_for(journal_path, camera_tx, proc)  # the camera reads on
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if main_fd >= 0:
            os.close(main_fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert _outcomes(journal_path) == [
        (both_tx, "checked"),
        (serial_tx, "checked"),
        (camera_tx, "checked"),
    ]
    assert sources() == [("replay", False), ("serial", False)]  # kiosk run stopped
