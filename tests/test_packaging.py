"""The project builds as a wheel with its fonts, and nothing Pi-only is imported eagerly."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PI_ONLY = ("picamera2", "libcamera", "systemd", "lgpio", "evdev", "RPi")


def test_wheel_contains_packages_fonts_and_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("smartum_kiosk-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    assert "kiosk/flows/engine.py" in names
    assert "hardware/camera/reader.py" in names
    assert "refbackend/server.py" in names and "refbackend/py.typed" in names
    assert any(n.startswith("kiosk/screens/fonts/") and n.endswith(".otb") for n in names)
    assert "kiosk/screens/fonts/OFL.txt" in names
    assert not any(n.startswith("tests/") for n in names)
    assert "kiosk = kiosk.cli:run_main" in scripts


def test_importing_every_module_pulls_in_nothing_pi_only() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import kiosk, hardware, refbackend\n"
        "for pkg in (kiosk, hardware, refbackend):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {PI_ONLY!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.stdout.strip() == ""


def test_version_command() -> None:
    from kiosk import __version__

    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0 and out.stdout.strip() == f"kiosk {__version__}"
