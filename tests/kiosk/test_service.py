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
