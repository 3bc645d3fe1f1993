"""scripts/wheelhouse.sh: by default the wheelhouse holds what the card runs.

The card is Raspberry Pi OS trixie 64-bit: CPython 3.13 on aarch64. The script's
download cache (``$XDG_CACHE_HOME/smartum-kiosk/wheels/TARGET-KEY``, complete once it
holds ``.numpy``) is filled here beforehand for two targets, so the real script runs
without the network and only chooses which targets' wheels go into the wheelhouse.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "scripts" / "wheelhouse.sh"
TARGETS = {"aarch64-cp311": "cp311", "aarch64-cp313": "cp313"}


def cached_downloads(cache: Path, constraints: Path) -> None:
    """A complete download cache for both targets: a numpy wheel of each one's tag."""
    key = hashlib.sha256(constraints.read_bytes()).hexdigest()[:12]
    for target, tag in TARGETS.items():
        folder = cache / "smartum-kiosk" / "wheels" / f"{target}-{key}"
        folder.mkdir(parents=True)
        name = f"numpy-2.2.6-{tag}-{tag}-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
        (folder / name).write_bytes(f"numpy for {tag}".encode())
        (folder / ".numpy").touch()


def run(tmp_path: Path, *targets: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("numpy==2.2.6\n")
    cache = tmp_path / "cache"
    cached_downloads(cache, constraints)
    wheel = tmp_path / "smartum_kiosk-1.3.0-py3-none-any.whl"
    wheel.write_bytes(b"the kiosk")
    out = tmp_path / "house"
    argv = ["bash", str(WHEELHOUSE), "--wheel", str(wheel), "--out", str(out),
            "--constraints", str(constraints)]  # fmt: skip
    for target in targets:
        argv += ["--target", target]
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return done, out


def test_by_default_the_wheelhouse_is_for_trixie_cpython_3_13_on_aarch64(tmp_path: Path) -> None:
    done, out = run(tmp_path)
    assert done.returncode == 0, done.stderr
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert wheels == [
        "numpy-2.2.6-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "smartum_kiosk-1.3.0-py3-none-any.whl",
    ]
    lock = (out / "requirements.lock").read_text()
    assert lock.count("numpy==2.2.6 --hash=sha256:") == 1 and lock.count("--hash") == 2
    assert "wheels for aarch64-cp313\n" in done.stderr


def test_cpython_3_11_wheels_only_when_asked_for(tmp_path: Path) -> None:
    done, out = run(tmp_path, "aarch64-cp313", "aarch64-cp311")
    assert done.returncode == 0, done.stderr
    tags = sorted(p.name.split("-")[2] for p in out.glob("numpy-*.whl"))
    assert tags == ["cp311", "cp313"]
    assert "wheels for aarch64-cp313 aarch64-cp311\n" in done.stderr
