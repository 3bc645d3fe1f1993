#!/bin/bash
# First boot of a kiosk SD card prepared by scripts/flash.sh. Run once, as root, by
# cloud-init (runcmd). Output lands in /var/log/cloud-init-output.log.
#
# From <boot>/kiosk/ (the FAT boot partition) it:
#   - needs nothing from the network: stock Raspberry Pi OS trixie Lite has python3 and
#     python3-venv, and everything else (numpy, Pillow, pyserial, ...) is in the card's
#     wheelhouse. The journal's fields and sd_notify need no python3-systemd (the kiosk
#     speaks both protocols itself). What only the network can bring - python3-picamera2
#     when the camera is a configured source, python3-lgpio on a Pi without it - is
#     left to kiosk-packages (scripts/kiosk-packages.sh): tried once now with a bounded
#     wait for a route, then by kiosk-packages.timer every 10 minutes until installed;
#     meanwhile the kiosk serves a serial or HID scanner and its status names what is
#     missing,
#   - creates the kiosk account (sysusers.d) and loads i2c-dev at every boot,
#   - places kiosk.toml (and ca_bundle.pem) in /etc/kiosk (root:kiosk 0640), the client secret at
#     /etc/kiosk/client_secret (kiosk:kiosk 0600), then deletes the secret and
#     network-config (the Wi-Fi key; cloud-init has applied it before this runs) from
#     the boot partition - also when anything here fails - and kiosk.toml (the staff
#     PIN's hash) once its installed copy is on disk,
#   - installs the technician's sudoers rule (kiosk/010_tech-nopasswd, checked with
#     visudo -cf, 0440) and checks `sudo -n true` for tech (scripts/_firstboot_system.sh,
#     first of all); a failure ends this script in error after the kiosk is installed,
#   - installs the kiosk from the card's locked wheelhouse (kiosk/wheels: no PyPI,
#     `pip install --no-index --require-hashes`) as the first release
#     (/opt/kiosk/<version>, `current`), installs kiosk.service, `kiosk-update` and a
#     `kiosk` command in /usr/local/bin, enables and starts the service.
#
# KIOSK_ROOT (default empty) prefixes target paths, KIOSK_BOOT_DIR names the boot
# partition's mount point and KIOSK_APT=0 skips the apt step, for testing against
# directories.

set -euo pipefail

ROOT=${KIOSK_ROOT:-}
BOOT=${KIOSK_BOOT_DIR:-/boot/firmware}
SRC=$BOOT/kiosk
SECRET=$SRC/client_secret
WHEELS=$SRC/wheels
# Seconds the first boot waits for a route before leaving the network-only packages to
# kiosk-packages.timer.
NET_WAIT=${KIOSK_NET_WAIT:-45}

log() { printf 'kiosk-firstboot: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Secrets must not outlive this script on a partition anyone can read.
# FAT overwrites in place, so shred leaves no copy in the freed clusters.
wipe() { # FILE...
    local f
    for f in "$@"; do
        [[ -f $f ]] || continue
        shred --iterations=1 --zero --remove "$f" 2>/dev/null || rm -f "$f"
    done
}
trap 'wipe "$SECRET" "$BOOT/network-config"' EXIT

[[ -d $SRC ]] || die "$SRC is missing: prepare the card with scripts/flash.sh"

# shellcheck source=scripts/_firstboot_system.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/_firstboot_system.sh"

# The technician's sudo first: whatever fails below, tech can log in and repair it.
# A failure here still ends the first boot in error (at the end).
sudo_failed=0
system_sudo || sudo_failed=1
[[ -f $WHEELS/requirements.lock ]] || die "$WHEELS/requirements.lock is missing: prepare the card with scripts/flash.sh"
shopt -s nullglob
wheels=("$WHEELS"/smartum_kiosk-*.whl)
shopt -u nullglob
((${#wheels[@]} == 1)) || die "expected one smartum_kiosk wheel in $WHEELS, found ${#wheels[@]}"

installed() { # PACKAGE|ALTERNATIVE...: one of them is installed
    local p
    for p in ${1//|/ }; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' && return 0
    done
    return 1
}

scanner_sources() { # one configured scanner source a line ([scanner] source: a word or a list)
    python3 - "$SRC/kiosk.toml" <<'PY' 2>/dev/null || true
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    source = tomllib.load(f).get("scanner", {}).get("source", "serial")
print("\n".join(source if isinstance(source, list) else [source]))
PY
}

# Debian packages only the network can bring: noted for kiosk-packages, never waited
# for beyond NET_WAIT. python3 -m venv is the one thing first boot cannot do without.
network_packages() {
    local want=() missing=() p rc=0
    python3 -c 'import ensurepip, venv' 2>/dev/null || python3 -c 'import pip, venv' 2>/dev/null ||
        die "python3-venv is missing; stock Raspberry Pi OS has it: write a Raspberry Pi OS trixie (64-bit) image"
    if grep -qs 'Raspberry Pi' "${KIOSK_MODEL_FILE:-/proc/device-tree/model}"; then
        want+=(python3-lgpio)
    fi
    if [[ -f $SRC/kiosk.toml ]] && scanner_sources | grep -qx camera; then
        want+=(python3-picamera2)
    fi
    for p in "${want[@]}"; do
        installed "$p" || missing+=("$p")
    done
    install -D -m 0755 "$SRC/kiosk-packages.sh" "$ROOT/usr/local/sbin/kiosk-packages"
    if ((${#missing[@]} == 0)); then
        log "Debian packages: nothing to install from the network"
        return 0
    fi
    install -d -m 0755 "$ROOT/var/lib/kiosk-packages"
    printf '%s\n' "${missing[@]}" >"$ROOT/var/lib/kiosk-packages/pending"
    local sysd=$ROOT/etc/systemd/system
    install -d "$sysd"
    cat >"$sysd/kiosk-packages.service" <<'UNIT'
[Unit]
Description=Install the kiosk's Debian packages that need the network (python3-picamera2)
After=network-online.target time-sync.target
Wants=network-online.target
ConditionPathExists=/var/lib/kiosk-packages/pending

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kiosk-packages --wait 30
SuccessExitStatus=75
TimeoutStartSec=30min
UNIT
    cat >"$sysd/kiosk-packages.timer" <<'UNIT'
[Unit]
Description=Retry the kiosk's network-only Debian packages until installed

[Timer]
OnBootSec=2min
OnUnitInactiveSec=10min
RandomizedDelaySec=1min

[Install]
WantedBy=timers.target
UNIT
    if [[ -z $ROOT ]]; then
        systemctl daemon-reload
        systemctl enable kiosk-packages.timer
    fi
    log "Debian packages from the network: ${missing[*]} (waiting up to ${NET_WAIT} s for a route now, then kiosk-packages.timer retries)"
    KIOSK_ROOT=$ROOT "$ROOT/usr/local/sbin/kiosk-packages" --wait "$NET_WAIT" || rc=$?
    if ((rc == 75)); then
        for p in "${missing[@]}"; do
            installed "$p" && continue
            case $p in
                python3-picamera2) log "  until python3-picamera2 is installed the camera is off; a serial or HID scanner works" ;;
                python3-lgpio) log "  until python3-lgpio is installed the LED, buzzer and buttons stay off" ;;
            esac
        done
    elif ((rc != 0)); then
        log "warning: kiosk-packages failed ($rc); kiosk-packages.timer tries again"
    fi
    if [[ -z $ROOT ]]; then
        systemctl start kiosk-packages.timer || true
    fi
}

if [[ ${KIOSK_APT:-1} != 0 ]]; then
    network_packages
fi

log "creating the kiosk account"
install -D -m 0644 "$SRC/kiosk.sysusers" "$ROOT/etc/sysusers.d/kiosk.conf"
systemd-sysusers ${ROOT:+--root="$ROOT"}
ids=$(awk -F: '$1 == "kiosk" { print $3 ":" $4 }' "$ROOT/etc/passwd")
[[ -n $ids ]] || die "systemd-sysusers did not create the kiosk user"
uid=${ids%:*} gid=${ids#*:}

log "loading i2c-dev now and at every boot (OLED display on /dev/i2c-1)"
install -D -m 0644 /dev/null "$ROOT/etc/modules-load.d/kiosk.conf"
printf 'i2c-dev\n' >"$ROOT/etc/modules-load.d/kiosk.conf"
modprobe i2c-dev || log "warning: modprobe i2c-dev failed; /dev/i2c-1 appears after a reboot"

install -d -m 0750 -o 0 -g "$gid" "$ROOT/etc/kiosk"
if [[ -f $SRC/kiosk.toml ]]; then
    install -m 0640 -o 0 -g "$gid" "$SRC/kiosk.toml" "$ROOT/etc/kiosk/kiosk.toml"
    sync "$ROOT/etc/kiosk/kiosk.toml" # on the root file system before the card's copy goes
    # The staff PIN's hash must not stay on a partition anyone can read.
    wipe "$SRC/kiosk.toml"
    log "configuration placed at /etc/kiosk/kiosk.toml and removed from the boot partition"
fi
if [[ -f $SRC/ca_bundle.pem ]]; then
    install -m 0640 -o 0 -g "$gid" "$SRC/ca_bundle.pem" "$ROOT/etc/kiosk/ca_bundle.pem"
    log "backend CA placed at /etc/kiosk/ca_bundle.pem"
fi
if [[ -f $SECRET ]]; then
    install -m 0600 -o "$uid" -g "$gid" "$SECRET" "$ROOT/etc/kiosk/client_secret"
    sync # on the root file system before the card's copy goes
    wipe "$SECRET"
    log "client secret placed at /etc/kiosk/client_secret and removed from the boot partition"
fi
if [[ -f $BOOT/network-config ]]; then
    sync # the applied network settings are on the root file system before it goes
    wipe "$BOOT/network-config"
    log "network-config (the Wi-Fi key) removed from the boot partition; the applied copy is in /etc/netplan"
fi

install -D -m 0755 "$SRC/update-remote.sh" "$ROOT/usr/local/sbin/kiosk-update"
log "installing ${wheels[0]##*/} from the card's wheelhouse (offline)"
KIOSK_ROOT=$ROOT "$ROOT/usr/local/sbin/kiosk-update" \
    --first-install --wheelhouse "$WHEELS" --wheel "${wheels[0]}" --units "$SRC" \
    --settle "${KIOSK_SETTLE:-5}"
install -d "$ROOT/usr/local/bin"
ln -sfn /opt/kiosk/current/bin/kiosk "$ROOT/usr/local/bin/kiosk"
sync # all of the above survives a power cut right after the first boot
((!sudo_failed)) || die "the kiosk is installed, but sudo for $TECH_USER does not work (see above)"
log "done; check with: sudo -u kiosk kiosk status"
