"""Slower fsync for the journal's files: the LD_PRELOAD shim of ``bench/fsync_delay.c``.

A Pi's SD card takes 5-50 ms per flush where a server's virtual disk takes a fraction
of a millisecond. ``--fsync-ms N`` of the benchmarks re-runs the benchmark in a child
process with the shim preloaded; the child names the journal's directory with
:func:`delay_under` before it opens the journal, so every ``fsync``/``fdatasync`` of a
file under it takes N ms more and every other file (the reference backend's) is synced
at full speed.

The shim is built once per source version with the system C compiler (``cc``) into
``$XDG_CACHE_HOME/kiosk-bench`` (default ``~/.cache/kiosk-bench``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "fsync_delay.c"
MS_VAR = "KIOSK_FSYNC_DELAY_MS"
PREFIX_VAR = "KIOSK_FSYNC_DELAY_PREFIX"


def build_shim(env: dict[str, str] | None = None) -> Path:
    """Path of the compiled shim, building it with ``cc`` if this source is not built yet.

    The cache directory follows ``XDG_CACHE_HOME`` of *env* (default: this process's).
    """
    env = dict(os.environ if env is None else env)
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kiosk-bench"
    out = base / f"fsync_delay-{digest}.so"
    if out.exists():
        return out
    compiler = env.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("--fsync-ms needs a C compiler (apt-get install gcc)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(partial), str(SOURCE), "-ldl"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"building the fsync shim failed:\n{done.stderr}")
    partial.replace(out)
    return out


def preload_env(ms: float, env: dict[str, str] | None = None) -> dict[str, str]:
    """*env* (default: this process's) with the shim preloaded and *ms* of delay per sync."""
    out = dict(os.environ if env is None else env)
    shim = str(build_shim(out))
    out["LD_PRELOAD"] = f"{shim} {out['LD_PRELOAD']}" if out.get("LD_PRELOAD") else shim
    out[MS_VAR] = str(round(ms))
    out.pop(PREFIX_VAR, None)
    return out


def active() -> bool:
    """True in a process started with the shim preloaded and a delay set."""
    return "fsync_delay-" in os.environ.get("LD_PRELOAD", "") and MS_VAR in os.environ


def rerun_with_delay(ms: float, script: str, argv: list[str]) -> int | None:
    """Run *script* again with the shim preloaded; its exit status, or None to go on here.

    None when no delay is asked for or this process already has the shim.
    """
    if ms <= 0 or active():
        return None
    done = subprocess.run([sys.executable, script, *argv], env=preload_env(ms))
    return done.returncode


def delay_under(directory: Path) -> None:
    """Delay the syncs of files under *directory* from now on (no-op without the shim)."""
    if active():
        os.environ[PREFIX_VAR] = str(directory.resolve())
