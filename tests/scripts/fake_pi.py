"""A Raspberry Pi in a directory: fake systemctl, modprobe, runuser and python3 venvs.

The device scripts (firstboot.sh, update-remote.sh) run for real against a root
directory (KIOSK_ROOT); only the commands that would touch the host are replaced:

- ``systemctl`` keeps one unit state in ``<state>/unit``; starting the service looks
  at the release ``opt/kiosk/current`` points to: a version listed in
  ``<state>/broken`` fails at once, one in ``<state>/hangs`` stays "activating"
  (never sends READY=1), anything else becomes active. Each release has a journal
  schema (6 for a version listed in ``<state>/migrates``, else 5): it fails at once
  on a journal of a newer schema, as ``kiosk run`` does, and migrates an older one
  (a column added, a scan recorded).
- ``python3 -m venv DIR`` makes a venv whose ``pip install`` accepts an offline,
  hash-checked install from a wheelhouse (``--no-index --require-hashes
  --find-links DIR --requirement LOCK``, the kiosk wheel's hash in LOCK, a wheel with a
  locked hash in DIR for every project of LOCK) or, noted as ``pip-from-index WHEEL``,
  one wheel whose dependencies would come from the index. It writes a
  ``bin/kiosk`` that reports the wheel's version; its ``selftest --json`` reports
  the clock unsynchronised (a network part) and, for versions listed in
  ``<state>/selftest-fails``, the camera failing.
- The system has numpy 1.24.2 (python3-numpy) unless ``<state>/no-system-numpy``
  exists (stock Raspberry Pi OS Lite).
- ``systemd-run`` runs its command in the foreground; ``journalctl`` prints nothing.
- ``runuser -u USER -- sudo -n true`` answers as sudo would from the root's
  ``etc/sudoers.d`` (a 0440 root file without a dot granting USER ``NOPASSWD:ALL``).
- Every call is appended to ``<state>/calls``.
- ``systemd-sysusers`` is the real one (with ``--root``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SYSTEMCTL = r"""#!/bin/bash
S=$FAKE_STATE
echo "systemctl $*" >>"$S/calls"
args=()
for a in "$@"; do [[ $a == --* ]] || args+=("$a"); done
state=$(cat "$S/unit" 2>/dev/null || echo inactive)
restarts=$(cat "$S/nrestarts" 2>/dev/null || echo 0)
current=$(readlink "$KIOSK_ROOT/opt/kiosk/current" || true)
case ${args[0]} in
  start|restart)
    # The release's journal schema: 6 for a version listed in migrates, else 5. A newer
    # journal is refused (the kiosk then never reports READY); an older one is migrated
    # to it, and the release records a scan at once.
    schema=5; grep -qxF "$current" "$S/migrates" 2>/dev/null && schema=6
    journal=$(/usr/bin/python3 - "$KIOSK_ROOT/var/lib/kiosk/journal.db" "$schema" <<'PY'
import sqlite3, sys
from pathlib import Path
path, schema = Path(sys.argv[1]), int(sys.argv[2])
if not path.exists():
    sys.exit(print("ok"))
db = sqlite3.connect(path)
version = db.execute("PRAGMA user_version").fetchone()[0]
if version > schema:
    sys.exit(print("newer"))
if version < schema:
    db.execute("ALTER TABLE outcomes ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    db.execute(f"PRAGMA user_version = {schema}")
    db.execute("INSERT INTO outcomes (tx, note) VALUES ('tx_after_migration', 'new')")
    db.commit()
print("ok")
PY
)
    if [[ $journal == newer ]]; then state=failed
    elif grep -qxF "$current" "$S/broken" 2>/dev/null; then state=failed
    elif grep -qxF "$current" "$S/hangs" 2>/dev/null; then state=activating
    else state=active; fi
    echo "$state" >"$S/unit"; echo "started $current $state" >>"$S/calls" ;;
  stop) echo inactive >"$S/unit" ;;
  is-active) echo "$state"; [[ $state == active ]]; exit ;;
  show)
    sub=dead; [[ $state == active ]] && sub=running; [[ $state == failed ]] && sub=failed
    [[ $state == activating ]] && sub=start
    printf 'ActiveState=%s\nSubState=%s\nNRestarts=%s\n' "$state" "$sub" "$restarts" ;;
  daemon-reload|enable|reset-failed) ;;
  *) echo "fake systemctl: unexpected $*" >&2; exit 1 ;;
esac
"""

PYTHON = r"""#!/bin/bash
# fake python3: only `-m venv --system-site-packages DIR`
echo "python3 $*" >>"$FAKE_STATE/calls"
# a script on stdin (journal copy, selftest report) runs in the real Python
[[ $1 == - ]] && exec /usr/bin/python3 "$@"
[[ $1 == -m && $2 == venv && $3 == --system-site-packages ]] || exit 9
dir=$4
mkdir -p "$dir/bin"
printf 'include-system-site-packages = true\n' >"$dir/pyvenv.cfg"
cat >"$dir/bin/python" <<'EOF'
#!/bin/bash
dir=$(dirname "$(dirname "$0")")
echo "venv-python $*" >>"$FAKE_STATE/calls"
[[ $1 == - ]] && exec /usr/bin/python3 "$@"
if [[ $1 == -c ]]; then [[ -e $FAKE_STATE/no-system-numpy ]] && exit 1; echo 1.24.2; exit 0; fi
[[ $1 == -m && $2 == pip && $3 == install ]] || exit 9
if [[ " $* " != *" --no-index "* ]]; then
  wheel=${!#}  # pip install ... WHEEL: dependencies from the index
  echo "pip-from-index $(basename "$wheel")" >>"$FAKE_STATE/calls"
else
# An offline install from a locked wheelhouse: the kiosk wheel's hash must be locked.
[[ " $* " == *" --require-hashes "* ]] || { echo "fake pip: no --require-hashes" >&2; exit 9; }
links=""; lock=""
while (($#)); do
  case $1 in --find-links) links=$2; shift ;; --requirement) lock=$2; shift ;; esac
  shift
done
[[ -f $lock ]] || { echo "fake pip: no lock $lock" >&2; exit 9; }
wheel=$(ls "$links"/smartum_kiosk-*.whl)
grep -q "^smartum-kiosk==.* --hash=sha256:$(sha256sum "$wheel" | cut -d' ' -f1)" "$lock" ||
  { echo "fake pip: hash of $wheel not in $lock" >&2; exit 9; }
# Every locked project needs a wheel in the wheelhouse with one of its hashes.
sums=$(sha256sum "$links"/*.whl | cut -d' ' -f1)
while read -r req hashes; do
  [[ -z $req || $req == \#* ]] && continue
  found=0
  for h in $hashes; do grep -qxF "${h#--hash=sha256:}" <<<"$sums" && found=1; done
  ((found)) || { echo "fake pip: no wheel of $req with a locked hash in $links" >&2; exit 9; }
done <"$lock"
fi
version=$(basename "$wheel" | cut -d- -f2)
cat >"$dir/bin/kiosk" <<KIOSK
#!/bin/bash
echo "kiosk $version \$*" >>"\$FAKE_STATE/calls"
if [[ \$1 == --version ]]; then echo "kiosk $version"; exit 0; fi
if [[ \$1 == selftest ]] && grep -qxF "$version" "\$FAKE_STATE/selftest-fails" 2>/dev/null; then
  echo '{"results": [{"part": "camera", "status": "FAIL", "detail": "no frames"}], "ok": false}'
  exit 1
fi
echo '{"results": [{"part": "clock", "status": "FAIL", "detail": "not synchronised"},'
echo ' {"part": "scanner", "status": "PASS", "detail": "ok"}], "ok": false}'
exit 1
KIOSK
chmod +x "$dir/bin/kiosk"
EOF
chmod +x "$dir/bin/python"
"""

RUNUSER = r"""#!/bin/bash
echo "runuser $*" >>"$FAKE_STATE/calls"
user=""
while [[ $1 != -- ]]; do [[ $1 == -u ]] && user=$2; shift; done
shift
if [[ "$*" == "sudo -n true" ]]; then
  # sudo's answer from the root's drop-ins: a file without a dot, mode 0440, root's,
  # granting USER everything without a password.
  for f in "$KIOSK_ROOT"/etc/sudoers.d/*; do
    [[ -f $f && ${f##*/} != *.* && $(stat -c '%a %u' "$f") == "440 0" ]] || continue
    grep -qxF "$user ALL=(ALL) NOPASSWD:ALL" "$f" && exit 0
  done
  echo "sudo: a password is required" >&2
  exit 1
fi
exec "$@"
"""

SYSTEMD_RUN = r"""#!/bin/bash
# fake systemd-run: drop the options, run the command here
echo "systemd-run $*" >>"$FAKE_STATE/calls"
while [[ $1 == -* ]]; do
  case $1 in --unit|--description|--property|-p) shift 2 ;; *) shift ;; esac
done
exec "$@"
"""

JOURNALCTL = '#!/bin/bash\necho "journalctl $*" >>"$FAKE_STATE/calls"\n'

MODPROBE = r"""#!/bin/bash
echo "modprobe $*" >>"$FAKE_STATE/calls"
"""


class FakePi:
    """A root directory plus fake commands; ``env`` runs the device scripts against it."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.state = base / "state"
        self.bin = base / "bin"
        for d in (self.root / "etc", self.state, self.bin):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        (self.root / "etc/group").write_text("root:x:0:\nvideo:x:44:\n")
        for name, text in (
            ("systemctl", SYSTEMCTL),
            ("python3", PYTHON),
            ("runuser", RUNUSER),
            ("modprobe", MODPROBE),
            ("systemd-run", SYSTEMD_RUN),
            ("journalctl", JOURNALCTL),
        ):
            path = self.bin / name
            path.write_text(text)
            path.chmod(0o755)
        self.env = dict(
            os.environ,
            PATH=f"{self.bin}:{os.environ['PATH']}",
            KIOSK_ROOT=str(self.root),
            FAKE_STATE=str(self.state),
            PYTHON=str(self.bin / "python3"),
        )

    @property
    def opt(self) -> Path:
        return self.root / "opt/kiosk"

    def current(self) -> str:
        return os.readlink(self.opt / "current")

    def previous(self) -> str | None:
        link = self.opt / "previous"
        return os.readlink(link) if link.is_symlink() else None

    def calls(self) -> list[str]:
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def unit_state(self) -> str:
        return (self.state / "unit").read_text().strip()

    def mark(self, kind: str, version: str) -> None:
        """kind: broken | hangs | selftest-fails | migrates."""
        with (self.state / kind).open("a") as f:
            f.write(version + "\n")


def have_sysusers() -> bool:
    return shutil.which("systemd-sysusers") is not None
