"""Hostile files: secrets the kiosk user cannot read, broken journals, read-only and full disks.

What root can and cannot test here, said plainly:

- Root reads a file whatever its mode, so "the kiosk user cannot read its
  secret" runs the check in a forked child that dropped to the unprivileged
  user ``nobody`` (uid 65534), which meets a real EACCES. Run as a normal
  user, the child keeps that user and the file is made mode 000.
- A read-only and a full filesystem are real: a 512 KiB tmpfs mounted for the
  test (root only). The kernel refuses to remount a filesystem read-only
  while the kiosk holds its journal open for writing (EBUSY), so "read-only"
  is tested at start-up: the state a Pi is in after the kernel forced the root
  filesystem read-only and the service restarted. Without the right to mount,
  these tests skip with that reason; the journal's own ENOSPC test
  (``PRAGMA max_page_count`` in test_journal.py) still runs everywhere.
- Everything that matters goes through a running counter (``make_sim``): the
  kiosk shows an alarm, refuses, keeps what is stored, never crashes, and
  works again once the disk is writable or has space.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import queue
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk import screens
from kiosk.cli import main
from kiosk.config import load_config
from kiosk.errors import ConfigError, JournalError
from kiosk.journal import Journal
from kiosk.languages import LANGUAGES
from kiosk.views import Alarm, Result
from refbackend import DEMO_VENUE

NOBODY = 65534


def _flow_fixtures() -> Any:
    """The simulated counter of tests/kiosk/flows/conftest.py (make_sim), reused here."""
    path = Path(__file__).resolve().parent / "flows" / "conftest.py"
    spec = importlib.util.spec_from_file_location("kiosk_flow_fixtures_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_sim = _flow_fixtures().make_sim


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_everywhere(view: Any) -> None:
    for lang in LANGUAGES:
        assert screens.render(view, lang).size == (screens.WIDTH, screens.HEIGHT)


def no_outcome(sim: Any, seconds: float = 0.5) -> None:
    with pytest.raises(queue.Empty):
        sim.outcome(timeout=seconds)


# --- secrets ------------------------------------------------------------------------------------

CONFIG = """
[device]
id = "counter-1"
venue = "ven_demo0000000000"
[backend]
url = "http://127.0.0.1:8787"
client_id = "abc"
client_secret_file = "{secret}"
issuer = "https://reference.kiosk.invalid"
"""


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="kiosk-files-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def check_as_kiosk_user(config: Path) -> tuple[int, str]:
    """``load_config`` and ``kiosk config check`` as an unprivileged user, in a forked child.

    Forked rather than started: the interpreter lives under /root, which nobody may enter.
    Returns (exit status of config check, the problems load_config reported).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try, report through the pipe, never return
        text = "child failed"
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                load_config(config)
                problems = "loaded"
            except ConfigError as err:
                problems = "\n".join(err.problems)
            except BaseException as exc:
                problems = f"escaped {type(exc).__name__}: {exc}"
            with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
                status = main(["config", "check", str(config)])
            text = f"{status}\n{problems}"
        finally:
            os.write(write_end, text.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reply = pipe.read().decode()
    os.waitpid(pid, 0)
    status, _, problems = reply.partition("\n")
    return int(status), problems


@pytest.mark.parametrize("locked", ["file", "directory"])
def test_secret_the_kiosk_user_cannot_read(open_dir: Path, locked: str) -> None:
    folder = open_dir / "private"
    folder.mkdir(mode=0o755)
    secret = folder / "client_secret"
    secret.write_text("s3cret-value\n")
    secret.chmod(0o600 if locked == "file" else 0o644)
    if locked == "directory":
        folder.chmod(0o700)
        secret.chmod(0o600)
    if os.geteuid() != 0:
        (secret if locked == "file" else folder).chmod(0o000)
    config = open_dir / "kiosk.toml"
    config.write_text(CONFIG.format(secret=secret))
    config.chmod(0o644)
    status, problems = check_as_kiosk_user(config)
    assert status == 2, problems
    assert "cannot be read by this user; check its owner" in problems
    assert "s3cret" not in problems


def test_symlinked_secret_stops_kiosk_run_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real_secret"
    real.write_text("s3cret-value\n")
    real.chmod(0o600)
    link = tmp_path / "client_secret"
    link.symlink_to(real)
    config = tmp_path / "kiosk.toml"
    config.write_text(CONFIG.format(secret=link))
    started = time.monotonic()
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "is a symlink; put the secret in a plain file" in err
    assert "Traceback" not in err and "s3cret" not in err
    assert time.monotonic() - started < 5.0  # refused before any hardware or network


# --- corrupt journals ---------------------------------------------------------------------------


def test_garbage_journal_is_moved_aside_and_the_counter_keeps_working(
    tmp_path: Path, make_sim: Any
) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    before = digest(path)
    sim = make_sim()
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "journal" and alarm.salvage is not None and alarm.salvage.kept == 0
    render_everywhere(alarm)
    (aside,) = tmp_path.glob("journal.db.corrupt-*")
    assert digest(aside) == before  # kept for the technician, byte for byte
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4000)
    assert (sim.scan(token).word, tx) == ("checked", tx)
    # The offline record of this device was lost: no offline acceptance until it is resolved.
    sim.backend.pause()
    refused = sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1])
    assert (refused.word, refused.reason) == ("needs_network", "journal")


def _snapshot_with_wal(tmp_path: Path, commits: int) -> tuple[Path, Path]:
    """The journal and its WAL as a power cut would leave them (never checkpointed)."""
    live = tmp_path / "live.db"
    journal = Journal.open(live)
    journal.conn.execute("PRAGMA wal_autocheckpoint = 0")
    for n in range(commits):
        journal.begin("receipt", {"n": n, "pad": "x" * 300}, tx=f"tx_{n:016d}")
    db, wal = tmp_path / "cut.db", tmp_path / "cut.db-wal"
    shutil.copy(live, db)
    shutil.copy(Path(f"{live}-wal"), wal)
    journal.close()
    return db, wal


def test_truncated_wal_keeps_every_complete_commit(tmp_path: Path) -> None:
    db, wal = _snapshot_with_wal(tmp_path, commits=12)
    full_db, full_wal = db.read_bytes(), wal.read_bytes()
    kept = []
    for cut in (0, 32, 100, len(full_wal) // 3, len(full_wal) // 2, len(full_wal) - 7, None):
        db.write_bytes(full_db)
        wal.write_bytes(full_wal if cut is None else full_wal[:cut])
        with Journal.open(db) as journal:
            assert journal.moved_aside is None  # a short WAL is not damage
            rows = journal.open_requests()
            # Only whole transactions survive, oldest first, with their exact bodies.
            assert [r.body["n"] for r in rows] == list(range(len(rows)))
            kept.append(len(rows))
            journal.begin("receipt", {"after": True}, tx="tx_after000000000")
    assert kept == sorted(kept) and kept[-1] == 12 and kept[0] < 12, kept


def test_garbage_wal_and_shm_are_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        journal.begin("receipt", {"n": 1}, tx="tx_kept0000000000")
    Path(f"{path}-wal").write_bytes(os.urandom(5000))
    Path(f"{path}-shm").write_bytes(os.urandom(32768))
    with Journal.open(path) as journal:
        assert journal.moved_aside is None
        assert [r.tx for r in journal.open_requests()] == ["tx_kept0000000000"]


@pytest.mark.parametrize("table", ["requests", "notes"])
def test_sqlite_file_of_another_program_is_refused_and_left_alone(
    tmp_path: Path, make_sim: Any, table: str
) -> None:
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table} (url TEXT, fetched INTEGER)")  # someone else's data
    conn.execute(f"INSERT INTO {table} VALUES ('https://example.fi', 1)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(JournalError, match="another program's database"):
        Journal.open(path)
    sim = make_sim()
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "journal"
    render_everywhere(alarm)
    sim.submit_scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1])
    no_outcome(sim)  # refused: nothing can be recorded, so nothing is accepted
    assert sim.counter.engine.heartbeat is not None  # the alarm loop keeps turning
    sim.stop()
    # Not converted, not moved aside, not written to: byte for byte what it was.
    assert digest(path) == before and not list(tmp_path.glob("journal.db.corrupt-*"))
    assert not Path(f"{path}-wal").exists()


# --- read-only and full filesystems -------------------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs of its own; skipped (with the reason) where mounting is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(where))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield where
    finally:
        _mount("-o", "remount,rw", str(where))
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=10).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def fill(disk: Path) -> Path:
    """Take every free byte of *disk*; returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert shutil.disk_usage(disk).free < 4096
    return filler


def test_journal_on_a_read_only_filesystem(small_disk: Path, make_sim: Any) -> None:
    path = small_disk / "journal.db"
    with Journal.open(path) as journal:
        journal.record("receipt", "checked", tx="tx_before00000000", shown_accepted=True)
    done = _mount("-o", "remount,ro", str(small_disk))
    assert done.returncode == 0, done.stderr
    before = digest(path)
    sim = make_sim(journal={"path": str(path), "min_free_mb": 0})
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "journal" and "read-only" in alarm.detail
    render_everywhere(alarm)
    sim.submit_scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1])
    no_outcome(sim)
    sim.stop()
    assert digest(path) == before
    # Writable again (fsck done, remounted): the restarted kiosk has its history and works.
    assert _mount("-o", "remount,rw", str(small_disk)).returncode == 0
    again = make_sim(journal={"path": str(path), "min_free_mb": 0})
    tx, token = again.backend.mint_receipt(DEMO_VENUE, 2500)
    assert (again.scan(token).word, tx) == ("checked", tx)
    with Journal.open(path) as journal:
        assert {"tx_before00000000", tx} <= {o.tx for o in journal.outcomes()}


def test_full_disk_alarms_refuses_keeps_and_recovers(small_disk: Path, make_sim: Any) -> None:
    path = small_disk / "journal.db"
    sim = make_sim(
        journal={"path": str(path), "min_free_mb": 0}, scanner={"repeat_window_scanner": 0.0}
    )
    first_tx, first = sim.backend.mint_receipt(DEMO_VENUE, 3000)
    assert sim.scan(first).word == "checked"
    # An empty write-ahead log, so that the full disk meets the scan's first write whatever
    # free frames the journal's creation and the first scan left behind in it.
    with Journal.open(path) as journal:
        assert journal.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    filler = fill(small_disk)
    second_tx, second = sim.backend.mint_receipt(DEMO_VENUE, 4500)
    sim.submit_scan(second)
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "disk_full"
    render_everywhere(alarm)
    no_outcome(sim)  # nothing shown as accepted, and nothing was sent (journal first)
    assert sim.counter.engine.heartbeat is not None
    # What was stored is still there and readable.
    with Journal.open(path) as journal:
        assert [o.outcome for o in journal.outcomes() if o.tx == first_tx] == ["checked"]
    # Space is back: the same receipt is checked now, for the first time at the backend.
    filler.unlink()
    retry = sim.scan(second)
    assert (retry.word, retry.tx) == ("checked", second_tx)
    render_everywhere(Result(retry))
    assert sim.scan(first).word == "already_checked"


def test_low_disk_guard_refuses_new_scans_before_the_disk_is_full(
    small_disk: Path, make_sim: Any
) -> None:
    path = small_disk / "journal.db"
    sim = make_sim(journal={"path": str(path), "min_free_mb": 1})  # more than the disk has
    sim.submit_scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1])
    assert sim.wait_view(Alarm).kind == "disk_full"
    no_outcome(sim)
    with Journal.open(path) as journal:
        assert journal.conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
