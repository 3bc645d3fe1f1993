"""`kiosk run`'s composition root keeps serving when hardware is missing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kiosk.config import Config, parse_config
from kiosk.service import run
from refbackend import DEMO_VENUE, ReferenceBackend

NO_PINS = {"led_pin": -1, "buzzer_pin": -1, "button_up": -1, "button_down": -1, "button_ok": -1}


def _config(
    tmp_path: Path, refbackend: ReferenceBackend, client: tuple[str, str], **sections: Any
) -> Config:
    secret = tmp_path / "secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    raw: dict[str, Any] = {
        "device": {"id": "counter-1", "venue": DEMO_VENUE},
        "backend": {
            "url": refbackend.url,
            "client_id": client[0],
            "client_secret_file": str(secret),
            "issuer": refbackend.issuer,
        },
        "signals": NO_PINS,
        "journal": {"path": str(tmp_path / "journal.db")},
        "metrics": {"textfile": ""},  # never node_exporter's folder of this machine
    }
    return parse_config({**raw, **sections})


def test_missing_camera_and_display_do_not_stop_the_kiosk(
    tmp_path: Path,
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
    caplog: Any,
) -> None:
    # No camera stack and no I2C bus on this machine: both must degrade, not crash.
    cfg = _config(
        tmp_path,
        refbackend,
        demo_client,
        scanner={"source": "camera"},
        display={"driver": "ssd1306", "i2c_port": 9},
    )
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(cfg, stop=stop)))
    with caplog.at_level("ERROR"):
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            "camera source unavailable" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.05)
        assert thread.is_alive()
        stop.set()
        thread.join(10)
    assert result == [0]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "display unavailable, running without it" in messages
    assert "camera source unavailable" in messages


def test_camera_pipeline_checks_a_receipt_shown_to_it(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> None:
    import segno

    from kiosk.journal import Journal

    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    frames = tmp_path / "frames"
    frames.mkdir()
    segno.make(token, error="m").save(str(frames / "0001.png"), scale=3, border=6)
    cfg = _config(
        tmp_path,
        refbackend,
        demo_client,
        scanner={"source": "replay"},
        camera={"replay_dir": str(frames), "fps": 10.0},
        display={"driver": "png", "png_dir": str(tmp_path / "screens")},
    )
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(cfg,), kwargs={"stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 15
        words: list[str] = []
        while time.monotonic() < deadline and "checked" not in words:
            time.sleep(0.1)
            if (tmp_path / "journal.db").exists():
                with Journal.open(tmp_path / "journal.db") as journal:
                    words = [o.outcome for o in journal.outcomes() if o.tx == tx]
    finally:
        stop.set()
        thread.join(10)
    # The phone stays in front of the camera: one check, then silence (repeat window).
    assert words == ["checked"]
    assert (tmp_path / "screens" / "latest.png").exists()


def test_replay_source_needs_a_folder() -> None:
    import pytest

    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "device": {"id": "c", "venue": DEMO_VENUE},
                "backend": {
                    "url": "http://127.0.0.1:1",
                    "client_id": "a",
                    "client_secret_file": "x",
                    "issuer": "i",
                },
                "scanner": {"source": "replay"},
            },
            read_secret=False,
        )
    assert any(
        'camera.replay_dir: needed when scanner.source = "replay"' in p for p in info.value.problems
    )


# --- what `kiosk run` loads --------------------------------------------------------------------

# Run `python -m kiosk run`, then list every module it had loaded when it stopped.
_RUN_AND_LIST_MODULES = """
import atexit, runpy, sys
out = sys.argv.pop()
loaded = lambda: sorted(m for m, v in sys.modules.items() if v is not None)  # None: kept out
atexit.register(lambda: open(out, "w").write("\\n".join(loaded())))
sys.argv = ["kiosk", *sys.argv[1:]]
runpy.run_module("kiosk", run_name="__main__")
"""
# Camera decoding, the other decoder, the reference backend, GPIO without pins: none of it
# belongs in a serial-scanner kiosk (each costs megabytes of memory).
NOT_FOR_SERIAL = (
    "numpy", "zxingcpp", "pyzbar", "kiosk.decode", "hardware.camera", "picamera2",
    "refbackend", "waitress", "segno", "gpiozero", "evdev", "hardware.hid_scanner",
    "charset_normalizer", "chardet",
)  # fmt: skip


def test_serial_kiosk_run_loads_no_camera_decoder_backend_or_gpio(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> None:
    import os
    import pty
    import queue
    import signal
    import subprocess
    import sys

    master, slave = pty.openpty()
    secret = tmp_path / "secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "counter-1"\nvenue = "{DEMO_VENUE}"\n'
        f'[backend]\nurl = "{refbackend.url}"\nclient_id = "{demo_client[0]}"\n'
        f'client_secret_file = "{secret}"\nissuer = "{refbackend.issuer}"\n'
        f'[scanner]\nsource = "serial"\nport = "{os.ttyname(slave)}"\n'
        '[display]\ndriver = "none"\n'
        "[signals]\nled_pin = -1\nbuzzer_pin = -1\nbutton_up = -1\nbutton_down = -1\n"
        "button_ok = -1\n"
        f'[journal]\npath = "{tmp_path / "journal.db"}"\nmin_free_mb = 0\n'
        f'[metrics]\ntextfile = "{tmp_path / "kiosk.prom"}"\n'
    )
    modules = tmp_path / "modules.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, "run", "--config", str(config), str(modules)],
        env={**os.environ, "KIOSK_LOG_LEVEL": "info"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 2000)
    lines: queue.Queue[str] = queue.Queue()
    stderr = proc.stderr
    assert stderr is not None

    def read() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 30.0
    scan_at = float("inf")
    try:
        while f"outcome checked tx={tx}" not in "".join(seen[-1:]):
            now = time.monotonic()
            assert now < deadline, "no outcome for the scanned receipt:\n" + "".join(seen)
            if now >= scan_at:  # through the real pty; again if the port was not listening yet
                os.write(master, token.encode() + b"\r\n")
                scan_at = now + 4.0
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                continue
            if " ready: " in seen[-1]:
                scan_at = time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0
    loaded = set(modules.read_text().split())
    assert "kiosk.service" in loaded and "hardware.serial_scanner" in loaded
    assert sorted(m for m in NOT_FOR_SERIAL if m in loaded) == []


# The camera kiosk decodes with zxing-cpp and talks to the backend over the network: the
# other decoder, the serial and HID scanners, the reference backend and its server, the
# benchmarks' QR drawing and the Pi camera library (not used for a replay) stay out of it;
# a replay of PNG files loads Pillow's PNG decoder only, not its other image formats.
NOT_FOR_CAMERA = (
    "pyzbar", "serial", "hardware.serial_scanner", "evdev", "hardware.hid_scanner",
    "refbackend", "waitress", "segno", "picamera2",
    "PIL.JpegImagePlugin", "PIL.GifImagePlugin", "PIL.BmpImagePlugin", "PIL.PpmImagePlugin",
)  # fmt: skip


def test_camera_kiosk_run_with_pins_loads_only_its_own_libraries(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    import segno

    from kiosk.journal import Journal

    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    frames = tmp_path / "frames"
    frames.mkdir()
    segno.make(token, error="m").save(str(frames / "0001.png"), scale=3, border=6)
    secret = tmp_path / "secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "counter-1"\nvenue = "{DEMO_VENUE}"\n'
        f'[backend]\nurl = "{refbackend.url}"\nclient_id = "{demo_client[0]}"\n'
        f'client_secret_file = "{secret}"\nissuer = "{refbackend.issuer}"\n'
        f'[scanner]\nsource = "replay"\n[camera]\nfps = 10.0\nreplay_dir = "{frames}"\n'
        '[display]\ndriver = "none"\n'
        "[signals]\nled_pin = 17\nbuzzer_pin = 18\nbutton_up = -1\nbutton_down = -1\n"
        "button_ok = -1\n"
        f'[journal]\npath = "{tmp_path / "journal.db"}"\nmin_free_mb = 0\n'
        f'[metrics]\ntextfile = "{tmp_path / "kiosk.prom"}"\n'
    )
    modules = tmp_path / "modules.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, "run", "--config", str(config), str(modules)],
        env={**os.environ, "KIOSK_LOG_LEVEL": "info", "GPIOZERO_PIN_FACTORY": "mock"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    words: list[str] = []
    try:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and "checked" not in words and proc.poll() is None:
            time.sleep(0.2)
            if (tmp_path / "journal.db").exists():
                with Journal.open(tmp_path / "journal.db") as journal:
                    words = [o.outcome for o in journal.outcomes() if o.tx == tx]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert words == ["checked"], err
    assert proc.returncode == 0, err
    loaded = set(modules.read_text().split())
    assert {"kiosk.service", "zxingcpp", "hardware.camera", "gpiozero"} <= loaded
    assert sorted(m for m in NOT_FOR_CAMERA if m in loaded) == []
