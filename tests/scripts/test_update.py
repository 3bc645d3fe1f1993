"""scripts/update.sh and update-remote.sh: switch, selftest gate, automatic rollback.

update-remote.sh runs for real against a root directory (tests/scripts/fake_pi.py:
fake systemctl, python3 venvs, runuser). update.sh runs with fake ssh/scp/sudo that
execute locally, so the whole path from the workstation is exercised.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest
from fake_pi import FakePi, have_sysusers

ROOT = Path(__file__).resolve().parents[2]
UPDATE = ROOT / "scripts" / "update.sh"
REMOTE = ROOT / "scripts" / "update-remote.sh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not have_sysusers(), reason="installs files as root into a test root"
)

SSH = r"""#!/bin/bash
# fake ssh: drop options, run the command here
echo "ssh $*" >>"$FAKE_STATE/ssh-calls"
while [[ $1 == -* ]]; do [[ $1 == -i || $1 == -o ]] && shift; shift; done
shift   # host
bash -c "$*"
"""
SCP = r"""#!/bin/bash
echo "scp $*" >>"$FAKE_STATE/ssh-calls"
args=()
while (($#)); do
  case $1 in -i|-o) shift 2 ;; -q|-r) shift ;; *) args+=("$1"); shift ;; esac
done
dest=${args[-1]#*:}
unset 'args[-1]'
cp -r "${args[@]}" "$dest"
"""
SUDO = '#!/bin/bash\nexec "$@"\n'


def wheel(dir: Path, version: str) -> Path:
    """A locked wheelhouse (as scripts/wheelhouse.sh makes it) with kiosk *version*."""
    house = dir / f"wheels-{version}"
    house.mkdir(exist_ok=True)
    path = house / f"smartum_kiosk-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("kiosk/__init__.py", f'__version__ = "{version}"\n')
    (house / "requirements.lock").write_text(
        f"smartum-kiosk=={version} --hash=sha256:{digest(path)}\n"
    )
    return house


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def pi(tmp_path: Path) -> FakePi:
    """A Pi running release 0.1.0 with a config, a secret and a journal."""
    pi = FakePi(tmp_path / "pi")
    for name, text in (("ssh", SSH), ("scp", SCP), ("sudo", SUDO)):
        (pi.bin / name).write_text(text)
        (pi.bin / name).chmod(0o755)
    (pi.root / "etc/kiosk").mkdir(parents=True)
    (pi.root / "etc/kiosk/kiosk.toml").write_text('[device]\nid = "counter-1"\n')
    (pi.root / "etc/kiosk/client_secret").write_text("s3cret\n")
    (pi.root / "var/lib/kiosk").mkdir(parents=True)
    with sqlite3.connect(pi.root / "var/lib/kiosk/journal.db") as db:
        db.execute("CREATE TABLE outcomes (tx TEXT)")
        db.executemany("INSERT INTO outcomes VALUES (?)", [(f"tx_{i}",) for i in range(100)])
        db.execute("PRAGMA user_version = 5")
    units = tmp_path / "units"
    units.mkdir()
    (units / "kiosk.service").write_text("[Service]\n# release 0.1.0\n")
    (units / "kiosk.sysusers").write_text((ROOT / "systemd/kiosk.sysusers").read_text())
    first = wheel(tmp_path, "0.1.0")
    result = run(
        ["bash", str(REMOTE), "--first-install", "--wheelhouse", str(first), "--units",
         str(units), "--settle", "0"],
        pi.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pi.current() == "0.1.0"
    (pi.state / "calls").unlink()
    return pi


def update(pi: FakePi, tmp_path: Path, version: str, *extra: str) -> subprocess.CompletedProcess:
    key = tmp_path / "id_ed25519"
    key.write_text("not used by the fake ssh\n")
    argv = [str(UPDATE), "--host", "counter-1", "--ssh-key", str(key),
            "--wheelhouse", str(wheel(tmp_path, version)), "--settle", "1", *extra]  # fmt: skip
    return run(argv, pi.env)


def test_update_switches_to_the_new_release(pi, tmp_path):
    journal = pi.root / "var/lib/kiosk/journal.db"
    before = {p: digest(p) for p in (journal, *sorted((pi.root / "etc/kiosk").iterdir()))}
    result = update(pi, tmp_path, "0.2.0")
    assert result.returncode == 0, result.stderr
    assert "updated 0.1.0 -> 0.2.0" in result.stderr
    assert (pi.current(), pi.previous()) == ("0.2.0", "0.1.0")
    assert pi.unit_state() == "active"
    assert {p: digest(p) for p in before} == before  # journal and config untouched
    # A consistent copy of the journal is taken (SQLite backup) before the service stops.
    copy = sqlite3.connect(pi.root / "var/lib/kiosk/journal.db.before-0.2.0")
    assert copy.execute("SELECT count(*) FROM outcomes").fetchone() == (100,)
    copy.close()
    # Files are replaced through a temporary name (never truncated in place).
    assert not list((pi.root / "etc").rglob("*.new"))
    assert (pi.root / "etc/systemd/system/kiosk.service.previous").read_text() == (
        "[Service]\n# release 0.1.0\n"
    )
    # The selftest's network parts (clock) are reported but do not stop the update.
    assert "(network; does not stop the update)" in result.stderr
    calls = pi.calls()
    # The selftest runs from the new venv, as the kiosk user, while the service is stopped,
    # before the switch; the service then starts on the new release.
    stop = calls.index("systemctl stop kiosk.service")
    selftest = calls.index(f"runuser -u kiosk -- {pi.opt}/0.2.0/bin/kiosk selftest --json "
                           "--config /etc/kiosk/kiosk.toml")  # fmt: skip
    assert stop < selftest < calls.index("started 0.2.0 active")
    # The remote part runs detached from the SSH session, from the uploaded wheelhouse.
    assert any(c.startswith("systemd-run --quiet --wait --collect --unit kiosk-update-")
               for c in calls)  # fmt: skip
    ssh_calls = (pi.state / "ssh-calls").read_text()
    assert "ssh -i" in ssh_calls and "tech@counter-1" in ssh_calls and "BatchMode=yes" in ssh_calls
    # The remote temporary directory is removed afterwards.
    assert not list(Path("/tmp").glob("kiosk-update.*/smartum_kiosk-0.2.0-*"))


def test_new_release_that_never_gets_ready_is_rolled_back(pi, tmp_path):
    pi.mark("hangs", "0.2.0")
    result = update(pi, tmp_path, "0.2.0", "--timeout", "2")
    assert result.returncode == 1
    assert "kiosk.service not active within 2s" in result.stderr
    assert "running the previous release 0.1.0 (checked: kiosk.service active)" in result.stderr
    assert pi.current() == "0.1.0" and pi.previous() is None
    assert not (pi.opt / "0.2.0").exists()
    assert pi.unit_state() == "active"
    assert pi.calls()[-1] != "started 0.2.0 activating"
    assert "started 0.1.0 active" in pi.calls()
    assert (pi.root / "etc/systemd/system/kiosk.service").read_text() == (
        "[Service]\n# release 0.1.0\n"
    )  # the unit file of the old release is back


def test_new_release_that_fails_is_rolled_back(pi, tmp_path):
    pi.mark("broken", "0.2.0")
    result = update(pi, tmp_path, "0.2.0")
    assert result.returncode == 1
    assert "kiosk.service failed" in result.stderr
    assert pi.current() == "0.1.0"
    assert pi.unit_state() == "active"


def journal_rows(pi: FakePi) -> tuple[int, list[str]]:
    db = sqlite3.connect(pi.root / "var/lib/kiosk/journal.db")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        return version, [r[0] for r in db.execute("SELECT tx FROM outcomes ORDER BY rowid")]
    finally:
        db.close()


def test_a_release_that_migrated_the_journal_and_failed_leaves_one_the_old_release_opens(
    pi, tmp_path
):
    pi.mark("migrates", "0.2.0")
    pi.mark("broken", "0.2.0")  # migrates the journal, records a scan, then fails
    result = update(pi, tmp_path, "0.2.0")
    assert result.returncode == 1
    assert "running the previous release 0.1.0 (checked: kiosk.service active)" in result.stderr
    assert pi.current() == "0.1.0" and pi.unit_state() == "active"
    version, rows = journal_rows(pi)
    assert version == 5  # the old release's schema again
    assert rows == [f"tx_{i}" for i in range(100)] + ["tx_after_migration"]  # nothing lost
    assert "journal schema 6 taken back to 5" in result.stderr
    kept = list((pi.root / "var/lib/kiosk").glob("journal.db.schema-6-*"))
    assert len(kept) == 1  # the migrated file, kept as it was
    assert sqlite3.connect(kept[0]).execute("PRAGMA user_version").fetchone() == (6,)


def test_manual_rollback_after_a_migration_takes_the_journal_back(pi, tmp_path):
    pi.mark("migrates", "0.2.0")
    assert update(pi, tmp_path, "0.2.0").returncode == 0
    assert journal_rows(pi)[0] == 6
    result = run(["bash", str(REMOTE), "--rollback", "--settle", "0"], pi.env)
    assert result.returncode == 0, result.stderr
    assert pi.current() == "0.1.0" and pi.unit_state() == "active"
    version, rows = journal_rows(pi)
    assert (version, rows[-1], len(rows)) == (5, "tx_after_migration", 101)


def test_an_old_release_that_cannot_open_the_journal_is_not_reported_running(pi, tmp_path):
    db = sqlite3.connect(pi.root / "var/lib/kiosk/journal.db")
    db.execute("PRAGMA user_version = 6")  # newer than both releases: nothing to go back to
    db.close()
    result = update(pi, tmp_path, "0.2.0")
    assert result.returncode == 1
    assert "ERROR: the previous release 0.1.0 does not run either" in result.stderr
    assert "(checked" not in result.stderr
    assert pi.unit_state() == "failed"


def test_failing_selftest_keeps_the_running_release(pi, tmp_path):
    pi.mark("selftest-fails", "0.2.0")
    result = update(pi, tmp_path, "0.2.0")
    assert result.returncode == 1
    assert "selftest of 0.2.0 failed; 0.1.0 stays" in result.stderr
    assert "FAIL camera   no frames" in result.stderr
    assert pi.current() == "0.1.0"
    assert not (pi.opt / "0.2.0").exists()
    assert not any(c.startswith("started 0.2.0") for c in pi.calls())
    assert pi.unit_state() == "active"


def test_same_version_is_refused(pi, tmp_path):
    result = update(pi, tmp_path, "0.1.0")
    assert result.returncode == 2
    assert "0.1.0 is already the running release" in result.stderr


def test_manual_rollback_and_pruning(pi, tmp_path):
    assert update(pi, tmp_path, "0.2.0").returncode == 0
    assert update(pi, tmp_path, "0.3.0").returncode == 0
    assert sorted(p.name for p in pi.opt.iterdir()) == ["0.2.0", "0.3.0", "current", "previous"]
    result = run(["bash", str(REMOTE), "--rollback", "--settle", "0"], pi.env)
    assert result.returncode == 0, result.stderr
    assert "rolled back from 0.3.0 to 0.2.0" in result.stderr
    assert (pi.current(), pi.previous()) == ("0.2.0", "0.3.0")


def test_dry_run_and_bad_arguments_touch_nothing(pi, tmp_path):
    result = update(pi, tmp_path, "0.2.0", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would run on tech@counter-1, detached: sudo systemd-run" in result.stderr
    assert not (pi.state / "ssh-calls").exists()
    for argv, message in (
        ([], "--host is required"),
        (["--host", "x"], "--ssh-key is required"),
        (["--host", "x", "--ssh-key", "/nonexistent"], "--ssh-key /nonexistent: no such file"),
        (["--host", "x;rm", "--ssh-key", str(UPDATE)], "--host x;rm: not a host name"),
        (["--host", "x", "--ssh-key", str(UPDATE), "--wheel", str(UPDATE)], "not a smartum_kiosk"),
        (
            ["--host", "x", "--ssh-key", str(UPDATE), "--wheelhouse", str(tmp_path)],
            "no requirements.lock there",
        ),
        (["--host", "x", "--ssh-key", str(UPDATE), "--port", "0"], "--port 0"),
        (["--host", "x", "--ssh-key", str(UPDATE), "--timeout", "0"], "--timeout 0"),
    ):
        result = run([str(UPDATE), *argv], pi.env)
        assert (result.returncode, message in result.stderr) == (2, True), result.stderr
    assert not (pi.state / "ssh-calls").exists()
    assert pi.current() == "0.1.0"
