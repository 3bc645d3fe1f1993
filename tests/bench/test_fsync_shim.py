"""The benchmarks' fsync shim delays syncs of files under its directory, and only those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import _fsync

PROBE = r"""
import json, os, sys, time
out = {}
for name in sys.argv[1:]:
    fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
    took = []
    for sync in (os.fsync, os.fdatasync, os.fsync):
        os.write(fd, b"x")
        started = time.perf_counter()
        sync(fd)
        took.append(time.perf_counter() - started)
    os.close(fd)
    out[name] = sorted(took)[1]
print(json.dumps(out))
"""


def test_shim_delays_only_files_under_the_prefix(tmp_path: Path) -> None:
    slow_dir, fast_dir = tmp_path / "journal", tmp_path / "backend"
    slow_dir.mkdir()
    fast_dir.mkdir()
    env = _fsync.preload_env(50, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    env[_fsync.PREFIX_VAR] = str(slow_dir)
    slow, fast, beside = slow_dir / "journal.db", fast_dir / "backend.db", tmp_path / "journal.db"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(slow), str(fast), str(beside)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    median = json.loads(done.stdout)
    assert median[str(slow)] >= 0.045  # fsync and fdatasync both take the extra 50 ms
    assert median[str(fast)] < 0.045
    assert median[str(beside)] < 0.045  # a name that only starts like the prefix is not under it
