#!/bin/bash
# Install the Debian packages a kiosk wants that only the network can bring (e.g.
# python3-picamera2 from the Raspberry Pi archive), once the network is there.
# Installed by scripts/firstboot.sh as /usr/local/sbin/kiosk-packages; run by it once
# at first boot and then by kiosk-packages.timer until nothing is left.
#
#   kiosk-packages [--wait SECONDS]
#
# Reads the pending packages from /var/lib/kiosk-packages/pending (one a line; `a|b`
# takes whichever the release has). Waits up to SECONDS (default 60) for a default
# route, then asks apt: `Acquire::Check-Date=false` while the clock is not yet
# synchronised (a Pi has no RTC: before NTP it runs at the image's date and apt would
# call the archive "not valid yet"), a dpkg lock timeout, bounded HTTP timeouts. What
# was installed leaves the list; an empty list disables the timer. When
# python3-picamera2 arrives, the kiosk's venv drops a numpy of its own (picamera2 is
# built against the system's) and kiosk.service restarts to open the camera.
#
# KIOSK_ROOT (default empty) prefixes paths, for testing against directories.
# Exit: 0 nothing left, 75 some packages still pending (no network yet), 1 error.

set -euo pipefail

ROOT=${KIOSK_ROOT:-}
STATE=$ROOT/var/lib/kiosk-packages
PENDING=$STATE/pending
VENV=$ROOT/opt/kiosk/current
wait_s=60

log() { printf 'kiosk-packages: %s\n' "$*" >&2; }

while (($#)); do
    case $1 in
        --wait)
            [[ ${2:-} =~ ^[0-9]+$ ]] || { log "ERROR: --wait needs a number of seconds"; exit 1; }
            wait_s=$2
            shift 2
            ;;
        *) log "ERROR: unknown argument: $1"; exit 1 ;;
    esac
done

installed() { # PACKAGE|ALTERNATIVE: one of them is installed
    local p
    for p in ${1//|/ }; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' && return 0
    done
    return 1
}

done_all() {
    rm -f "$PENDING"
    systemctl disable --now kiosk-packages.timer >/dev/null 2>&1 || true
    log "nothing left to install"
    exit 0
}

[[ -s $PENDING ]] || done_all
mapfile -t pending < <(grep -v '^[[:space:]]*$' "$PENDING")
left=()
for p in "${pending[@]}"; do
    installed "$p" || left+=("$p")
done
((${#left[@]})) || done_all

waited=0
until ip route show default 2>/dev/null | grep -q .; do
    if ((waited >= wait_s)); then
        log "no network after ${wait_s} s: ${left[*]} still to install (kiosk-packages.timer tries again)"
        exit 75
    fi
    sleep 2
    waited=$((waited + 2))
done

apt_opts=(-q -o Acquire::Retries=2 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20
    -o DPkg::Lock::Timeout=300)
if [[ $(timedatectl show -p NTPSynchronized --value 2>/dev/null) != yes ]]; then
    # Before NTP the clock may be months behind: the archive's Release files would look
    # "not valid yet". Their signatures are still checked.
    apt_opts+=(-o Acquire::Check-Date=false)
    log "the clock is not synchronised yet: apt ignores the Release files' dates"
fi
export DEBIAN_FRONTEND=noninteractive
log "installing ${left[*]} (apt)"
apt-get "${apt_opts[@]}" update || log "apt-get update failed (no route to the mirror yet?)"

still=() got=()
for p in "${left[@]}"; do
    chosen=""
    for alt in ${p//|/ }; do
        if apt-cache show --no-all-versions "$alt" >/dev/null 2>&1; then
            chosen=$alt
            break
        fi
    done
    if [[ -n $chosen ]] && apt-get "${apt_opts[@]}" install -y --no-install-recommends "$chosen"; then
        got+=("$chosen")
    else
        still+=("$p")
    fi
done

if [[ " ${got[*]} " == *" python3-picamera2 "* ]]; then
    # picamera2 (and simplejpeg) are built against the system's numpy: the venv must not
    # shadow it with the wheel installed while the system had none.
    if [[ -x $VENV/bin/python ]] &&
        "$VENV/bin/python" -c 'import numpy, sys; sys.exit(0 if numpy.__file__.startswith(sys.prefix) else 1)' 2>/dev/null; then
        "$VENV/bin/python" -m pip uninstall --yes --disable-pip-version-check numpy ||
            log "warning: could not remove the venv's numpy"
    fi
    systemctl try-restart kiosk.service || true
    log "python3-picamera2 installed; kiosk.service restarted to open the camera"
fi

if ((${#still[@]})); then
    printf '%s\n' "${still[@]}" >"$PENDING.new" && mv -f "$PENDING.new" "$PENDING"
    log "NOT INSTALLED yet: ${still[*]} (kiosk-packages.timer tries again)"
    exit 75
fi
done_all
