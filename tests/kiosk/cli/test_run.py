"""`kiosk run` as systemd starts it: a real process, codes on stdin, SIGTERM, clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.config import load_config
from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend

WAIT_S = 20.0

Outcomes = Callable[[str, str, subprocess.Popen[bytes]], list[str]]


def test_run_checks_a_receipt_from_stdin_and_stops_on_sigterm(
    kiosk_toml: Callable[..., Path],
    refbackend: ReferenceBackend,
    kiosk_run: Callable[..., subprocess.Popen[bytes]],
    journal_outcomes: Outcomes,
) -> None:
    config = kiosk_toml(scanner={"source": "stdin"}, log={"level": "info"})
    journal_path = load_config(config).journal.path
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    proc = kiosk_run(config)
    assert proc.stdin is not None
    proc.stdin.write(token.encode() + b"\n")
    proc.stdin.flush()
    assert journal_outcomes(journal_path, tx, proc) == ["checked"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_S)
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


def _why(journal_path: str, log: str) -> str:
    """For a failure: every outcome with its reason, then the kiosk's log."""
    with Journal.open(journal_path) as journal:
        rows = [(o.tx, str(o.outcome), o.reason) for o in reversed(journal.outcomes())]
    return f"{rows}\n{log}"


def _stopped_log(proc: subprocess.Popen[bytes]) -> str:
    """Stop the kiosk (a failing test is over) and return what it logged."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode("utf-8", "replace")


def test_run_with_camera_and_serial_scanner_counts_each_code_once(
    kiosk_toml: Callable[..., Path],
    refbackend: ReferenceBackend,
    tmp_path: Path,
    cli: Callable[..., tuple[int, str, str]],
    kiosk_run: Callable[..., subprocess.Popen[bytes]],
    journal_outcomes: Outcomes,
) -> None:
    import json

    both_tx, both = refbackend.mint_receipt(DEMO_VENUE, 6500)  # shown to both
    serial_tx, serial_only = refbackend.mint_receipt(DEMO_VENUE, 5500)
    camera_tx, camera_only = refbackend.mint_receipt(DEMO_VENUE, 6500)
    # The camera (10 frames/s) sees the first receipt for 6 s (time for the scanner to read it
    # too while the camera still sees it), an empty counter for 9 s, then the third receipt.
    _frames(tmp_path / "frames", [(both, 60), (None, 90), (camera_only, 600)])
    main_fd, sub_fd = os.openpty()
    # The kiosk reads the port through a link, as through udev's /dev/kiosk-scanner, not by
    # its /dev/pts/N name: once this pty is closed (unplugged), the kernel gives N to the next
    # pty opened on the machine, and the kiosk, reopening that name, would read another
    # program's terminal and take bytes meant for that program's reader.
    port = tmp_path / "kiosk-scanner"
    port.symlink_to(os.ttyname(sub_fd))
    os.close(sub_fd)  # the kiosk opens the port itself
    config = kiosk_toml(
        scanner={"source": ["replay", "serial"], "port": str(port)},
        camera={"replay_dir": str(tmp_path / "frames"), "fps": 10.0},
        log={"level": "info"},
    )
    journal_path = load_config(config).journal.path
    proc = kiosk_run(config, stdin=subprocess.DEVNULL)

    def wait_for(tx: str) -> None:
        try:
            words = journal_outcomes(journal_path, tx, proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_why(journal_path, _stopped_log(proc))}") from None
        assert words == ["checked"], _why(journal_path, _stopped_log(proc))

    def sources() -> list[tuple[str, bool]]:
        code, out, _ = cli("status", "--config", str(config), "--json")
        assert code == 0
        return [(s["name"], s["ok"]) for s in json.loads(out)["sources"]]

    def wait_sources(expected: list[tuple[str, bool]]) -> None:
        deadline = time.monotonic() + WAIT_S
        while (now := sources()) != expected:
            assert time.monotonic() < deadline, now
            assert proc.poll() is None, "kiosk run ended early"
            time.sleep(0.2)

    try:
        wait_for(both_tx)  # the camera read it first
        # Scan only once the kiosk has the port open, as a technician checks `kiosk status`:
        # bytes sent before that meet a port not yet in raw mode, and opening it flushes
        # them, possibly in the middle of a line.
        wait_sources([("replay", True), ("serial", True)])
        # The scanner reads the same receipt while the camera still sees it: one scan.
        os.write(main_fd, both.encode() + b"\r\n")
        time.sleep(1.0)  # a second scan a moment later, as at a counter (not a readiness wait)
        os.write(main_fd, serial_only.encode() + b"\r\n")
        wait_for(serial_tx)
        assert sources() == [("replay", True), ("serial", True)]
        port.unlink()  # the scanner is unplugged: its device node goes first, as with udev
        os.close(main_fd)
        main_fd = -1
        wait_sources([("replay", True), ("serial", False)])
        wait_for(camera_tx)  # the camera reads on
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if main_fd >= 0:
            os.close(main_fd)
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert _outcomes(journal_path) == [
        (both_tx, "checked"),
        (serial_tx, "checked"),
        (camera_tx, "checked"),
    ], _why(journal_path, text)  # the reason of an unexpected outcome, and the kiosk's log
    assert sources() == [("replay", False), ("serial", False)]  # kiosk run stopped
