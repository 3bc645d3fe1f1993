#!/bin/bash
# First boot of a kiosk SD card prepared by scripts/flash.sh. Run once, as root, by
# cloud-init (runcmd), after the apt packages from user-data are installed. Output
# lands in /var/log/cloud-init-output.log.
#
# From <boot>/kiosk/ (the FAT boot partition) it:
#   - creates the kiosk account (sysusers.d) and loads i2c-dev at every boot,
#   - places kiosk.toml in /etc/kiosk (root:kiosk 0640) and the client secret at
#     /etc/kiosk/client_secret (kiosk:kiosk 0600), then deletes the secret from the
#     boot partition - also when anything here fails,
#   - installs the wheel as the first release (/opt/kiosk/<version>, `current`),
#     installs kiosk.service, `kiosk-update` and a `kiosk` command in /usr/local/bin,
#     enables and starts the service.
#
# KIOSK_ROOT (default empty) prefixes target paths and KIOSK_BOOT_DIR names the boot
# partition's mount point, for testing against directories.

set -euo pipefail

ROOT=${KIOSK_ROOT:-}
BOOT=${KIOSK_BOOT_DIR:-/boot/firmware}
SRC=$BOOT/kiosk
SECRET=$SRC/client_secret

log() { printf 'kiosk-firstboot: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The secret must not outlive this script on a partition anyone can read.
trap 'rm -f "$SECRET"' EXIT

[[ -d $SRC ]] || die "$SRC is missing: prepare the card with scripts/flash.sh"
shopt -s nullglob
wheels=("$SRC"/smartum_kiosk-*.whl)
shopt -u nullglob
((${#wheels[@]} == 1)) || die "expected one smartum_kiosk wheel in $SRC, found ${#wheels[@]}"

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
    log "configuration placed at /etc/kiosk/kiosk.toml"
fi
if [[ -f $SECRET ]]; then
    install -m 0600 -o "$uid" -g "$gid" "$SECRET" "$ROOT/etc/kiosk/client_secret"
    rm -f "$SECRET"
    log "client secret placed at /etc/kiosk/client_secret and removed from the boot partition"
fi

install -D -m 0755 "$SRC/update-remote.sh" "$ROOT/usr/local/sbin/kiosk-update"
log "installing ${wheels[0]##*/}"
KIOSK_ROOT=$ROOT "$ROOT/usr/local/sbin/kiosk-update" \
    --first-install --wheel "${wheels[0]}" --units "$SRC" --settle "${KIOSK_SETTLE:-5}"
install -d "$ROOT/usr/local/bin"
ln -sfn /opt/kiosk/current/bin/kiosk "$ROOT/usr/local/bin/kiosk"
log "done; check with: sudo -u kiosk kiosk status"
