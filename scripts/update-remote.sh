#!/bin/bash
# Install a kiosk release on this Raspberry Pi, switch to it, roll back if it fails.
# Runs as root on the Pi: started detached by scripts/update.sh (systemd-run, so a cut
# SSH connection does not stop it), by first boot (scripts/firstboot.sh), or by hand
# as `sudo kiosk-update ...`.
#
#   update-remote.sh --wheelhouse DIR [--wheel FILE] [--units DIR] [--timeout SEC]
#                    [--settle SEC] [--no-selftest] [--staging DIR]
#   update-remote.sh --wheelhouse DIR [--wheel FILE] --first-install [--units DIR]
#   update-remote.sh --rollback [--timeout SEC]
#
# DIR is a locked wheelhouse (scripts/wheelhouse.sh): the kiosk wheel (--wheel, default
# the one smartum_kiosk wheel in it), its dependencies and requirements.lock. The
# release is installed with `pip install --no-index --require-hashes`: nothing is
# fetched from the Internet, and only the locked files are accepted.
#
# Layout: /opt/kiosk/<version>/ is one venv per release (--system-site-packages, so
# Debian's numpy - 1.24 on bookworm, 2.2 on trixie; the wheelhouse's where the system
# has none -, picamera2, libcamera and python3-systemd are used); `current` and `previous` are symlinks switched with
# rename(2). The journal (/var/lib/kiosk) and the config (/etc/kiosk) are never
# changed by the update itself; a consistent copy of journal.db is kept as
# journal.db.before-<version>. When the new release migrated the journal and the update
# goes back (automatically or with --rollback), the journal is taken back to the schema
# of that copy with every row kept (the migrated file stays as journal.db.schema-*), so
# the release we go back to opens it; "running the previous release ... (checked)" is
# only said once it runs (a kiosk that cannot open its journal never reports READY=1).
#
# An update: install the wheelhouse into a fresh venv beside the running release
# (numpy pinned to the system's); copy the journal; stop the service (camera and
# scanner are exclusive); run `kiosk selftest` from the new venv as the kiosk user
# (the network-dependent parts, backend and clock, are reported but do not stop the
# update); install the unit; switch `current`; start the service and wait until it is
# active (READY=1) and stays so without restarts. Any failure after the stop switches
# back to the previous release, starts it and checks that it runs before saying so.
# Exit: 0 updated, 1 failed (the previous release runs, or the message says it does
# not), 2 bad usage. --staging DIR names the upload directory to delete at the end.
#
# KIOSK_ROOT (default empty) prefixes every path, for testing against a directory.

set -euo pipefail

ROOT=${KIOSK_ROOT:-}
OPT=$ROOT/opt/kiosk
UNIT=kiosk.service
CONFIG=/etc/kiosk/kiosk.toml
STATE=$ROOT/var/lib/kiosk
PYTHON=${PYTHON:-python3}
NAME_RE='^[A-Za-z0-9._+-]+$'
# selftest parts that depend on the studio's network, not on the release
ENVIRONMENT_PARTS="backend clock"

wheel="" wheelhouse="" units="" staging="" timeout=90 settle=20 mode=update selftest=1

log() { printf 'kiosk-update: %s\n' "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }
usage() { die "$1 (usage: update-remote.sh --wheelhouse DIR [--wheel FILE] [--units DIR] [--timeout SEC] [--settle SEC] [--first-install] [--no-selftest] [--staging DIR] | --rollback)" 2; }

while (($#)); do
    case $1 in
        --wheel | --wheelhouse | --units | --timeout | --settle | --staging)
            (($# >= 2)) || usage "$1 needs a value"
            case $1 in
                --wheel) wheel=$2 ;;
                --wheelhouse) wheelhouse=$2 ;;
                --units) units=$2 ;;
                --timeout) timeout=$2 ;;
                --settle) settle=$2 ;;
                --staging) staging=$2 ;;
            esac
            shift 2
            ;;
        --first-install) mode=first; shift ;;
        --rollback) mode=rollback; shift ;;
        --no-selftest) selftest=0; shift ;;
        *) usage "unknown option $1" ;;
    esac
done
if [[ -n $staging ]]; then
    trap 'rm -rf -- "$staging"' EXIT
fi
[[ $timeout =~ ^[0-9]+$ && $timeout -gt 0 ]] || usage "--timeout must be a positive number of seconds"
[[ $settle =~ ^[0-9]+$ ]] || usage "--settle must be a number of seconds"
if [[ $mode != rollback && -z $wheelhouse ]]; then
    # --wheel alone (older callers): the dependencies come from the package index.
    [[ -n $wheel ]] || usage "--wheelhouse (or --wheel) is required"
    [[ -f $wheel ]] || die "--wheel $wheel: no such file" 2
    [[ $(basename "$wheel") =~ $NAME_RE ]] || die "--wheel $wheel: unexpected file name" 2
    [[ -z $units || -f $units/$UNIT ]] || die "--units $units: no $UNIT there" 2
elif [[ $mode != rollback ]]; then
    [[ -f $wheelhouse/requirements.lock ]] || die "--wheelhouse $wheelhouse: no requirements.lock there" 2
    while IFS= read -r name; do
        [[ $name =~ $NAME_RE ]] || die "--wheelhouse $wheelhouse: unexpected file name '$name'" 2
    done < <(find "$wheelhouse" -mindepth 1 -maxdepth 1 -printf '%f\n')
    if [[ -z $wheel ]]; then
        shopt -s nullglob
        found=("$wheelhouse"/smartum_kiosk-*.whl)
        shopt -u nullglob
        ((${#found[@]} == 1)) || die "--wheelhouse $wheelhouse: expected one smartum_kiosk wheel, found ${#found[@]}" 2
        wheel=${found[0]}
    fi
    [[ -f $wheel ]] || die "--wheel $wheel: no such file" 2
    [[ -z $units || -f $units/$UNIT ]] || die "--units $units: no $UNIT there" 2
fi

# smartum_kiosk-1.2.0-py3-none-any.whl -> 1.2.0
wheel_version() {
    local name
    name=$(basename "$1")
    [[ $name =~ ^smartum_kiosk-([0-9][0-9A-Za-z.+_]*)-[^-]+-[^-]+-[^-]+\.whl$ ]] ||
        die "$name is not a smartum_kiosk wheel (smartum_kiosk-VERSION-py3-none-any.whl)" 2
    printf '%s\n' "${BASH_REMATCH[1]}"
}

release_of() { # target of a symlink in $OPT, or nothing
    if [[ -L $OPT/$1 ]]; then
        readlink "$OPT/$1"
    fi
}

point() { # point LINK at RELEASE atomically (rename over the old link), durably
    ln -sfn "$2" "$OPT/.$1.new" && mv -T "$OPT/.$1.new" "$OPT/$1" && sync "$OPT"
}

put() { # MODE SRC DEST: replace DEST atomically and durably (a power cut leaves the old
    # or the new file, never an empty one, which systemd would take for a masked unit)
    install -m "$1" "$2" "$3.new" && sync "$3.new" && mv -f "$3.new" "$3" && sync "$(dirname "$3")"
}

install_release() { # VERSION WHEEL: build the venv /opt/kiosk/VERSION from the wheelhouse
    local dir=$OPT/$1 numpy=""
    rm -rf "$dir"
    mkdir -p "$OPT"
    log "creating venv $dir"
    if "$PYTHON" -c 'import pip' 2>/dev/null; then
        # The system's pip (python3-pip) serves the venv: no copy of pip to unpack.
        "$PYTHON" -m venv --system-site-packages --without-pip "$dir" || return 1
    else
        "$PYTHON" -m venv --system-site-packages "$dir" || return 1
    fi
    # Keep the system's numpy when there is one (whatever its major version):
    # picamera2/simplejpeg are built against it. The constraint makes pip keep what is
    # there, and the wheelhouse's numpy is left out. Without one (stock Raspberry Pi OS
    # Lite), numpy comes from the wheelhouse like every other dependency.
    local requirements=$dir/requirements.txt source
    if numpy=$("$dir/bin/python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null); then
        printf 'numpy==%s\n' "$numpy" >"$dir/constraints.txt"
        source="numpy $numpy from the system"
    else
        : >"$dir/constraints.txt"
        source="numpy from the wheelhouse: the system has none"
    fi
    if [[ -n $wheelhouse ]]; then
        if [[ -n $numpy ]]; then
            grep -v '^numpy==' "$wheelhouse/requirements.lock" >"$requirements" || return 1
        else
            cp "$wheelhouse/requirements.lock" "$requirements" || return 1
            grep -q '^numpy==' "$requirements" || {
                log "the wheelhouse has no numpy and the system none: make the wheelhouse again with this release's scripts/wheelhouse.sh, or install python3-numpy (apt)"
                return 1
            }
        fi
        log "installing $(basename "$2") from the wheelhouse (offline, hashes checked; $source)"
        # --no-warn-conflicts: the lock is complete and hash-pinned; pip's check would only
        # report the system's own packages (seen via --system-site-packages) as an ERROR.
        "$dir/bin/python" -m pip install --no-input --disable-pip-version-check --no-cache-dir \
            --no-warn-conflicts --no-index --find-links "$wheelhouse" --require-hashes \
            --constraint "$dir/constraints.txt" --requirement "$requirements" || return 1
    else
        log "installing $(basename "$2") with its dependencies from the package index (no wheelhouse given: needs the network; $source)"
        "$dir/bin/python" -m pip install --no-input --disable-pip-version-check --prefer-binary \
            --constraint "$dir/constraints.txt" "$2" || return 1
    fi
    "$dir/bin/kiosk" --version >/dev/null || return 1
    sync # the whole venv is on the card before anything points at it
}

install_units() { # DIR: unit and sysusers files of the new release; old ones kept as .previous
    local sysd=$ROOT/etc/systemd/system sysu=$ROOT/etc/sysusers.d
    mkdir -p "$sysd" "$sysu" || return 1
    if [[ -f $sysd/$UNIT ]]; then
        put 0644 "$sysd/$UNIT" "$sysd/$UNIT.previous" || return 1
    fi
    put 0644 "$1/$UNIT" "$sysd/$UNIT" || return 1
    if [[ -f $1/kiosk.sysusers ]]; then
        put 0644 "$1/kiosk.sysusers" "$sysu/kiosk.conf" || return 1
    fi
    systemd-sysusers ${ROOT:+--root="$ROOT"} || return 1
    systemctl daemon-reload
}

restore_units() {
    local sysd=$ROOT/etc/systemd/system
    if [[ -f $sysd/$UNIT.previous ]]; then
        mv -f "$sysd/$UNIT.previous" "$sysd/$UNIT"
        sync "$sysd"
    fi
    systemctl daemon-reload || true
}

prop() { # PROPERTY of the unit from `systemctl show`
    systemctl show -p "$1" "$UNIT" | sed -n "s/^$1=//p"
}

wait_ready() { # active (READY=1 for Type=notify) within $timeout, then $settle s unchanged
    local deadline=$((SECONDS + timeout)) state since="" base="" first
    first=$(prop NRestarts)
    while ((SECONDS < deadline)) || [[ -n $since ]]; do
        state=$(systemctl is-active "$UNIT" || true)
        if [[ $state == failed ]]; then
            log "$UNIT failed: $(prop SubState); see journalctl -u kiosk -n 100"
            return 1
        fi
        if [[ -z $since && $(prop NRestarts) != "$first" ]]; then
            # It ended before READY=1 and systemd restarts it: no need to wait for
            # the start limit before going back.
            log "$UNIT ended before it was ready (restarted by systemd); see journalctl -u kiosk -n 100"
            return 1
        fi
        if [[ $state == active ]]; then
            if [[ -z $since ]]; then
                since=$SECONDS
                base=$(prop NRestarts)
            fi
            if [[ $(prop NRestarts) != "$base" ]]; then
                log "$UNIT was restarted while settling (watchdog or crash)"
                return 1
            fi
            if ((SECONDS - since >= settle)); then
                return 0
            fi
        elif [[ -n $since ]]; then
            log "$UNIT left the active state ($state) while settling"
            return 1
        fi
        sleep 0.5
    done
    log "$UNIT not active within ${timeout}s (now: $(prop ActiveState)/$(prop SubState))"
    return 1
}

backup_journal() { # VERSION: a consistent copy (SQLite backup API) while the kiosk runs
    local db=$STATE/journal.db
    [[ -f $db ]] || return 0
    rm -f "$STATE"/journal.db.before-*
    "$PYTHON" - "$db" "$STATE/journal.db.before-$1" <<'PY'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1], timeout=30)
dst = sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
dst.close()
src.close()
PY
    chmod 0600 "$STATE/journal.db.before-$1"
    chown --reference="$db" "$STATE/journal.db.before-$1"
    sync "$STATE/journal.db.before-$1"
}

journal_back_for() { # NEW: a journal that NEW migrated, taken back to the schema of the
    # release before it (that of journal.db.before-NEW) with every row kept, so that the
    # release we go back to can open it. The migrated file is kept as journal.db.schema-*.
    local db=$STATE/journal.db backup=$STATE/journal.db.before-$1
    [[ -f $db && -f $backup ]] || return 0
    "$PYTHON" - "$db" "$backup" <<'PY' || return 1
import os, sqlite3, sys, time
db, backup = sys.argv[1], sys.argv[2]
def version(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
live, old = version(db), version(backup)
if live <= old:
    sys.exit(0)
# The service is stopped: fold its write-ahead log into the file first, so that the file
# alone is the whole journal and no log is left to be replayed onto another file.
conn = sqlite3.connect(db)
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("PRAGMA journal_mode=DELETE")
conn.close()
kept = f"{db}.schema-{live}-{int(time.time())}"
work = f"{db}.rollback"
for path, source in ((kept, db), (work, backup)):
    src, dst = sqlite3.connect(source), sqlite3.connect(path)
    with dst:
        src.backup(dst)
    dst.close()
    src.close()
# Every row of every table the old schema has, in the columns it has (the migrations add
# columns and tables, each with a default): the newer file's data in the older schema.
out = sqlite3.connect(work, isolation_level=None)
out.execute("ATTACH DATABASE ? AS live", (kept,))
out.execute("BEGIN")
names = [r[0] for r in out.execute(
    "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
for name in names:
    quoted = '"' + name.replace('"', '""') + '"'
    mine = [r[1] for r in out.execute(f"PRAGMA main.table_info({quoted})")]
    theirs = {r[1] for r in out.execute(f"PRAGMA live.table_info({quoted})")}
    if not theirs:
        continue
    cols = ", ".join('"' + c.replace('"', '""') + '"' for c in mine if c in theirs)
    out.execute(f"DELETE FROM main.{quoted}")
    out.execute(f"INSERT INTO main.{quoted} ({cols}) SELECT {cols} FROM live.{quoted}")
out.execute("COMMIT")
out.execute("DETACH DATABASE live")
problems = out.execute("PRAGMA integrity_check").fetchall()
out.close()
if problems != [("ok",)]:
    os.unlink(work)
    sys.exit(f"kiosk-update: the journal could not be taken back: {problems[0][0]}")
st = os.stat(db)
for path in (work, kept):
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, 0o600)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
os.replace(work, db)
fd = os.open(os.path.dirname(db), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
print(f"kiosk-update: journal schema {live} taken back to {old} for the release before"
      f" (every row kept; the migrated file is {os.path.basename(kept)})", file=sys.stderr)
PY
}

prune() { # keep current and previous only
    local keep_a keep_b dir
    keep_a=$(release_of current) keep_b=$(release_of previous)
    for dir in "$OPT"/*; do
        [[ -d $dir && ! -L $dir ]] || continue
        dir=$(basename "$dir")
        [[ $dir == "$keep_a" || $dir == "$keep_b" ]] || rm -rf "${OPT:?}/$dir"
    done
}

run_selftest() { # VERSION: fails on any FAIL except the network-dependent parts
    local out
    log "selftest of $1"
    out=$(runuser -u kiosk -- "$OPT/$1/bin/kiosk" selftest --json --config "$CONFIG") || true
    "$OPT/$1/bin/python" - "$ENVIRONMENT_PARTS" "$out" <<'PY'
import json, sys
env = set(sys.argv[1].split())
try:
    results = json.loads(sys.argv[2])["results"]
except (ValueError, KeyError, TypeError):
    sys.exit("kiosk-update: the selftest gave no report")
bad = 0
for r in results:
    line = f"kiosk-update:   {r['status']:<4} {r['part']:<8} {r['detail']}"
    if r["status"] == "FAIL" and r["part"] in env:
        line += "  (network; does not stop the update)"
    elif r["status"] == "FAIL":
        bad += 1
    print(line, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

start_and_check() { # LABEL: start the unit and tell whether it runs
    if ! journal_back_for "$version"; then
        log "ERROR: the journal of $version could not be taken back to the schema of $1"
    fi
    systemctl reset-failed "$UNIT" 2>/dev/null || true
    systemctl restart --no-block "$UNIT" || true
    if wait_ready; then
        log "running the previous release $1 (checked: $UNIT active)"
    else
        log "ERROR: the previous release $1 does not run either: see journalctl -u kiosk -n 100"
    fi
}

switch_back() { # OLD OLDER NEW: make OLD current again (and OLDER previous), start it, check
    log "rolling back to $1"
    point current "$1" || log "ERROR: cannot switch $OPT/current back to $1"
    if [[ -n $2 ]]; then
        point previous "$2" || true
    else
        rm -f "$OPT/previous"
    fi
    restore_units
    start_and_check "$1"
    [[ -z $3 ]] || rm -rf "${OPT:?}/$3"
}

case $mode in
    first)
        version=$(wheel_version "$wheel")
        install_release "$version" "$wheel" || die "installing $version failed (see above)"
        point current "$version"
        if [[ -n $units ]]; then
            install_units "$units"
        fi
        systemctl enable "$UNIT"
        if [[ ! -f $ROOT$CONFIG ]]; then
            log "installed $version; no $CONFIG yet: copy it there, then: systemctl start kiosk"
            exit 0
        fi
        systemctl start --no-block "$UNIT"
        if wait_ready; then
            log "installed $version; $UNIT is running"
            exit 0
        fi
        die "installed $version, but $UNIT does not start: run 'kiosk selftest' and see journalctl -u kiosk"
        ;;
    rollback)
        now=$(release_of current) before=$(release_of previous)
        [[ -n $before && -d $OPT/$before ]] || die "no previous release to roll back to"
        point current "$before"
        point previous "$now"
        systemctl stop "$UNIT" || true
        journal_back_for "$now" || log "ERROR: the journal of $now could not be taken back to the schema of $before"
        systemctl restart --no-block "$UNIT"
        wait_ready || die "rolled back to $before, but $UNIT does not become active"
        log "rolled back from $now to $before"
        exit 0
        ;;
esac

version=$(wheel_version "$wheel")
old=$(release_of current) older=$(release_of previous)
[[ -n $old && -d $OPT/$old ]] || die "no current release in $OPT; use --first-install" 2
[[ $version != "$old" ]] || die "$version is already the running release" 2

# While the old release runs: nothing here stops it.
if ! install_release "$version" "$wheel"; then
    rm -rf "${OPT:?}/$version"
    die "installing $version failed; $old keeps running"
fi
if ! backup_journal "$version"; then
    rm -rf "${OPT:?}/$version"
    die "copying the journal failed (disk full?); $old keeps running"
fi

log "stopping $UNIT for the selftest (camera and scanner are exclusive)"
# From here on every failure starts the old release again and checks it.
if ! systemctl stop "$UNIT"; then
    start_and_check "$old"
    rm -rf "${OPT:?}/$version"
    exit 1
fi
if ((selftest)) && ! run_selftest "$version"; then
    log "selftest of $version failed; $old stays"
    rm -rf "${OPT:?}/$version"
    start_and_check "$old"
    exit 1
fi
if [[ -n $units ]] && ! install_units "$units"; then
    log "installing the unit of $version failed"
    switch_back "$old" "$older" "$version"
    exit 1
fi
if ! point previous "$old" || ! point current "$version"; then
    log "switching $OPT/current to $version failed"
    switch_back "$old" "$older" "$version"
    exit 1
fi
systemctl reset-failed "$UNIT" 2>/dev/null || true
systemctl start --no-block "$UNIT" || true
if wait_ready; then
    prune
    log "updated $old -> $version"
    exit 0
fi
switch_back "$old" "$older" "$version"
exit 1
