#!/bin/bash
# Install a kiosk release on this Raspberry Pi, switch to it, roll back if it fails.
# Runs as root on the Pi: started by scripts/update.sh over ssh, by first boot
# (scripts/firstboot.sh), or by hand as `sudo kiosk-update ...`.
#
#   update-remote.sh --wheel FILE [--units DIR] [--timeout SEC] [--settle SEC]
#   update-remote.sh --wheel FILE --first-install [--units DIR]
#   update-remote.sh --rollback [--timeout SEC]
#
# Layout: /opt/kiosk/<version>/ is one venv per release (--system-site-packages, so
# Debian's picamera2, libcamera, numpy and python3-systemd are used); `current` and
# `previous` are symlinks switched with rename(2). The journal (/var/lib/kiosk) and
# the config (/etc/kiosk) are never touched; a copy of journal.db is kept as
# journal.db.before-<version> in case a rollback meets a newer journal schema.
#
# An update: install the wheel into a fresh venv (numpy pinned to the system's),
# stop the service (camera and scanner are exclusive), run `kiosk selftest` from
# the new venv as the kiosk user, switch `current`, start the service and wait
# until it is active (READY=1) and stays so without restarts. Any failure switches
# back to the previous release and starts it again. Exit: 0 updated, 1 failed
# (rolled back), 2 bad usage.
#
# KIOSK_ROOT (default empty) prefixes every path, for testing against a directory.

set -Eeuo pipefail

ROOT=${KIOSK_ROOT:-}
OPT=$ROOT/opt/kiosk
UNIT=kiosk.service
CONFIG=/etc/kiosk/kiosk.toml
STATE=$ROOT/var/lib/kiosk
PYTHON=${PYTHON:-python3}

wheel="" units="" timeout=90 settle=20 mode=update selftest=1

log() { printf 'kiosk-update: %s\n' "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }
usage() { die "$1 (usage: update-remote.sh --wheel FILE [--units DIR] [--timeout SEC] [--settle SEC] [--first-install] [--no-selftest] | --rollback)" 2; }

while (($#)); do
    case $1 in
        --wheel) wheel=${2:-}; shift 2 || usage "--wheel needs a file" ;;
        --units) units=${2:-}; shift 2 || usage "--units needs a directory" ;;
        --timeout) timeout=${2:-}; shift 2 || usage "--timeout needs seconds" ;;
        --settle) settle=${2:-}; shift 2 || usage "--settle needs seconds" ;;
        --first-install) mode=first; shift ;;
        --rollback) mode=rollback; shift ;;
        --no-selftest) selftest=0; shift ;;
        *) usage "unknown option $1" ;;
    esac
done
[[ $timeout =~ ^[0-9]+$ && $timeout -gt 0 ]] || usage "--timeout must be a positive number of seconds"
[[ $settle =~ ^[0-9]+$ ]] || usage "--settle must be a number of seconds"
if [[ $mode != rollback ]]; then
    [[ -n $wheel ]] || usage "--wheel is required"
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

point() { # point LINK at RELEASE atomically (rename over the old link)
    ln -sfn "$2" "$OPT/.$1.new"
    mv -T "$OPT/.$1.new" "$OPT/$1"
}

install_release() { # VERSION WHEEL: build the venv /opt/kiosk/VERSION
    local dir=$OPT/$1 numpy
    rm -rf "$dir"
    mkdir -p "$OPT"
    log "creating venv $dir"
    "$PYTHON" -m venv --system-site-packages "$dir"
    # Keep Debian's numpy: picamera2/simplejpeg are built against it; numpy 2 from
    # PyPI over it breaks the camera. The constraint makes pip keep what is there.
    numpy=$("$dir/bin/python" -c 'import numpy; print(numpy.__version__)') ||
        die "numpy is not importable; install python3-numpy (apt) and try again"
    printf 'numpy==%s\n' "$numpy" >"$dir/constraints.txt"
    log "installing $(basename "$2") (numpy pinned to $numpy)"
    "$dir/bin/python" -m pip install --no-input --disable-pip-version-check --prefer-binary \
        --constraint "$dir/constraints.txt" "$2"
    "$dir/bin/kiosk" --version >/dev/null
}

install_units() { # DIR: unit and sysusers files of the new release; old ones kept as .previous
    local sysd=$ROOT/etc/systemd/system sysu=$ROOT/etc/sysusers.d
    mkdir -p "$sysd" "$sysu"
    if [[ -f $sysd/$UNIT ]]; then
        cp -p "$sysd/$UNIT" "$sysd/$UNIT.previous"
    fi
    install -m 0644 "$1/$UNIT" "$sysd/$UNIT"
    if [[ -f $1/kiosk.sysusers ]]; then
        install -m 0644 "$1/kiosk.sysusers" "$sysu/kiosk.conf"
    fi
    systemd-sysusers ${ROOT:+--root="$ROOT"}
    systemctl daemon-reload
}

restore_units() {
    local sysd=$ROOT/etc/systemd/system
    if [[ -f $sysd/$UNIT.previous ]]; then
        mv -f "$sysd/$UNIT.previous" "$sysd/$UNIT"
        systemctl daemon-reload
    fi
}

prop() { # PROPERTY of the unit from `systemctl show`
    systemctl show -p "$1" "$UNIT" | sed -n "s/^$1=//p"
}

wait_ready() { # active (READY=1 for Type=notify) within $timeout, then $settle s unchanged
    local deadline=$((SECONDS + timeout)) state since="" base=""
    while ((SECONDS < deadline)) || [[ -n $since ]]; do
        state=$(systemctl is-active "$UNIT" || true)
        if [[ $state == failed ]]; then
            log "$UNIT failed: $(prop SubState); see journalctl -u kiosk -n 100"
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

backup_journal() {
    local db=$STATE/journal.db
    [[ -f $db ]] || return 0
    rm -f "$STATE"/journal.db.before-*
    cp -p "$db" "$STATE/journal.db.before-$1"
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

run_selftest() { # VERSION
    log "selftest of $1"
    runuser -u kiosk -- "$OPT/$1/bin/kiosk" selftest --config "$CONFIG"
}

switch_back() { # OLD OLDER: make OLD current again (and OLDER previous), start it, wait
    log "rolling back to $1"
    point current "$1"
    if [[ -n $2 ]]; then
        point previous "$2"
    else
        rm -f "$OPT/previous"
    fi
    restore_units
    systemctl reset-failed "$UNIT" || true
    systemctl restart --no-block "$UNIT"
    if wait_ready; then
        log "rolled back: $1 is running again"
    else
        log "rolled back to $1, but it is not running either: see journalctl -u kiosk -n 100"
    fi
}

case $mode in
    first)
        version=$(wheel_version "$wheel")
        install_release "$version" "$wheel"
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

trap 'log "failed; removing $OPT/$version"; rm -rf "${OPT:?}/$version"; systemctl start --no-block "$UNIT" || true' ERR
install_release "$version" "$wheel"
log "stopping $UNIT for the selftest (camera and scanner are exclusive)"
systemctl stop "$UNIT"
trap - ERR
if ((selftest)) && ! run_selftest "$version"; then
    log "selftest of $version failed; $old stays"
    rm -rf "${OPT:?}/$version"
    systemctl start --no-block "$UNIT"
    wait_ready || log "$old did not come back either: see journalctl -u kiosk -n 100"
    exit 1
fi
backup_journal "$version"
if [[ -n $units ]]; then
    install_units "$units"
fi
point previous "$old"
point current "$version"
systemctl reset-failed "$UNIT" || true
systemctl start --no-block "$UNIT"
if wait_ready; then
    prune
    log "updated $old -> $version"
    exit 0
fi
switch_back "$old" "$older"
rm -rf "${OPT:?}/$version"
exit 1
