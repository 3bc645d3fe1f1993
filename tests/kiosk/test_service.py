"""`kiosk run`'s composition root keeps serving when hardware is missing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kiosk.config import parse_config
from kiosk.refbackend import DEMO_VENUE, ReferenceBackend
from kiosk.service import run


def test_missing_camera_and_display_do_not_stop_the_kiosk(
    tmp_path: Path,
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
    caplog: Any,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(demo_client[1])
    secret.chmod(0o600)
    cfg = parse_config(
        {
            "device": {"id": "counter-1", "venue": DEMO_VENUE},
            "backend": {
                "url": refbackend.url,
                "client_id": demo_client[0],
                "client_secret_file": str(secret),
                "issuer": refbackend.issuer,
            },
            # No camera stack and no I2C bus on this machine: both must degrade, not crash.
            "scanner": {"source": "camera"},
            "display": {"driver": "ssd1306", "i2c_port": 9},
            "signals": {
                "led_pin": -1,
                "buzzer_pin": -1,
                "button_up": -1,
                "button_down": -1,
                "button_ok": -1,
            },
            "journal": {"path": str(tmp_path / "journal.db")},
        }
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
