#!/bin/bash
# First boot, fleet part, of a kiosk SD card prepared by scripts/flash.sh with --metrics
# and/or --log-server. Run once, as root, by cloud-init (runcmd) after firstboot.sh (the
# kiosk account exists). Output lands in /var/log/cloud-init-output.log.
#
# Reads <boot>/kiosk/fleet.conf and:
#   metrics=1   writes /etc/default/prometheus-node-exporter first (ARGS: listen on
#               metrics_listen, or on the address of the default route's interface,
#               port 9100; never on every interface), then installs
#               prometheus-node-exporter (from the card's debs/, offline; else from the
#               mirror, see apt_install) keeping that file, orders it after
#               network-online.target, lets the kiosk group write its textfile folder
#               /var/lib/prometheus/node-exporter (dpkg-statoverride: kept across
#               upgrades), enables and restarts it, and restarts kiosk.service (its view of the
#               file system gets the folder, which did not exist when it started).
#   log_server  moves <boot>/kiosk/log/{ca.crt,client.crt,client.key} to /etc/kiosk/log
#               (root, 0600) - the boot partition's copies are deleted also when
#               anything here fails -, installs systemd-journal-remote (from the card's
#               debs/), writes
#               /etc/systemd/journal-upload.conf.d/kiosk.conf and a drop-in for
#               systemd-journal-upload.service (certificates as credentials, retries for
#               ever), keeps the journal persistent, enables and restarts the uploader.
#
# KIOSK_ROOT (default empty) prefixes target paths and KIOSK_BOOT_DIR names the boot
# partition's mount point, for testing against directories. KIOSK_NET_WAIT (default 120)
# is how many seconds to wait for a default route when no address was given, or before
# apt goes to the mirror.

set -euo pipefail

ROOT=${KIOSK_ROOT:-}
BOOT=${KIOSK_BOOT_DIR:-/boot/firmware}
SRC=$BOOT/kiosk
CERTS=$SRC/log
TEXTFILE_DIR=/var/lib/prometheus/node-exporter
UPLOAD_CREDENTIALS=/run/credentials/systemd-journal-upload.service

log() { printf 'kiosk-fleet-firstboot: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The certificates and key must not outlive this script on a partition anyone can read.
# FAT overwrites in place, so shred leaves no copy of the key in the freed clusters.
remove_certs() {
    [[ -d $CERTS ]] || return 0
    local f
    for f in "$CERTS"/*; do
        [[ -f $f ]] && { shred --iterations=1 --zero --remove "$f" 2>/dev/null || rm -f "$f"; }
    done
    rm -rf "$CERTS"
}
trap remove_certs EXIT

[[ -f $SRC/fleet.conf ]] || die "$SRC/fleet.conf is missing: prepare the card with scripts/flash.sh"
metrics=0 metrics_listen="" log_server=""
while IFS='=' read -r key value; do
    case $key in
        metrics) metrics=$value ;;
        metrics_listen) metrics_listen=$value ;;
        log_server) log_server=$value ;;
        '' | \#*) ;;
        *) die "$SRC/fleet.conf: unknown setting '$key'" ;;
    esac
done <"$SRC/fleet.conf"

# apt as scripts/kiosk-packages.sh runs it on a Pi: bounded HTTP timeouts and retries,
# a dpkg lock timeout (unattended-upgrades may hold the lock at first boot), and
# Acquire::Check-Date=false while the clock is not synchronised yet (a Pi has no RTC:
# before NTP it runs at the image's date and apt would call the archive's Release files
# "not valid yet"; their signatures are still checked).
apt_opts=()
apt_options() {
    apt_opts=(-q -o Acquire::Retries=2 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20
        -o DPkg::Lock::Timeout=300)
    if [[ $(timedatectl show -p NTPSynchronized --value 2>/dev/null) != yes ]]; then
        apt_opts+=(-o Acquire::Check-Date=false)
        log "the clock is not synchronised yet: apt ignores the Release files' dates"
    fi
}

wait_for_route() { # up to KIOSK_NET_WAIT seconds (default 120) for a default route
    local waited=0 limit=${KIOSK_NET_WAIT:-120}
    until ip route show default 2>/dev/null | grep -q .; do
        ((waited < limit)) || return 1
        sleep 2
        waited=$((waited + 2))
    done
}

apt_install() { # PACKAGE: from the card's .deb files (flash.sh fetched them, checked
    # against Debian's signed index; no network needed), else from the mirror once there
    # is a route. Keeps configuration files written before the install.
    local try debs=$SRC/debs/$1 opts
    apt_options
    opts=("${apt_opts[@]}" -y --no-install-recommends
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    export DEBIAN_FRONTEND=noninteractive
    if [[ -f $debs/SHA256SUMS ]]; then
        (cd "$debs" && sha256sum --quiet -c SHA256SUMS) ||
            die "the card's .deb files for $1 do not match their SHA256SUMS: flash the card again"
        log "installing $1 from the card (offline)"
        apt-get install "${opts[@]}" "$debs"/*.deb ||
            die "installing $1 failed (from the card's .deb files; see above)"
        rm -rf "$debs"
        return 0
    fi
    wait_for_route ||
        die "no default route after ${KIOSK_NET_WAIT:-120} s: cannot fetch $1 from the mirror; run this script again once the network is up: sudo bash $0"
    log "installing $1 from the mirror (the card has no .deb files for it)"
    for try in 1 2; do
        if apt-get install "${opts[@]}" "$1"; then
            return 0
        fi
        ((try == 2)) || apt-get "${apt_opts[@]}" update || true
    done
    die "installing $1 failed (see above); run this script again when apt works: sudo bash $0"
}

lan_address() { # the IPv4 address of the default route's interface
    local dev
    dev=$(ip -4 route show default 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    [[ -n $dev ]] || return 1
    ip -4 -o addr show dev "$dev" scope global 2>/dev/null |
        awk '{ split($4, a, "/"); print a[1]; exit }' | grep .
}

setup_metrics() {
    local listen=$metrics_listen waited=0 limit=${KIOSK_NET_WAIT:-120} address
    if [[ -z $listen ]]; then
        until address=$(lan_address); do
            ((waited < limit)) || die "no default route after ${limit} s: cannot tell the LAN address for node_exporter; flash again with --metrics-listen ADDR:PORT, or run this script again once the network is up"
            sleep 2
            waited=$((waited + 2))
        done
        listen=$address:9100
    fi
    log "node_exporter will listen on $listen only"
    install -d "$ROOT/etc/default"
    {
        printf '# Set by the kiosk first boot (scripts/flash.sh --metrics): listen on the LAN only.\n'
        printf 'ARGS="--web.listen-address=%s --collector.textfile.directory=%s"\n' \
            "$listen" "$TEXTFILE_DIR"
    } >"$ROOT/etc/default/prometheus-node-exporter"
    local dropin=$ROOT/etc/systemd/system/prometheus-node-exporter.service.d
    install -d "$dropin"
    printf '[Unit]\n# The listen address exists once the network is up.\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nRestart=always\nRestartSec=10s\n' \
        >"$dropin/kiosk.conf"
    apt_install prometheus-node-exporter
    install -d "$ROOT$TEXTFILE_DIR"
    if dpkg-statoverride --list "$TEXTFILE_DIR" >/dev/null 2>&1; then
        dpkg-statoverride --remove "$TEXTFILE_DIR"
    fi
    dpkg-statoverride --update --add root kiosk 0775 "$TEXTFILE_DIR"
    systemctl daemon-reload
    systemctl enable prometheus-node-exporter
    systemctl restart prometheus-node-exporter
    # kiosk.service (ReadWritePaths=-/var/lib/prometheus/node-exporter) started before
    # the package made that folder: only a restart gives its file system view the
    # writable folder.
    systemctl try-restart kiosk.service
    log "node_exporter enabled; the kiosk writes $TEXTFILE_DIR/kiosk.prom"
}

setup_upload() {
    [[ -f $CERTS/ca.crt ]] || die "$CERTS/ca.crt is missing: flash again with --log-ca FILE"
    install -d -m 0700 -o 0 -g 0 "$ROOT/etc/kiosk/log"
    local name names=(ca.crt)
    [[ ! -f $CERTS/client.crt ]] || names+=(client.crt client.key)
    for name in "${names[@]}"; do
        [[ -f $CERTS/$name ]] || die "$CERTS/$name is missing: flash again with --log-cert and --log-key"
        install -m 0600 -o 0 -g 0 "$CERTS/$name" "$ROOT/etc/kiosk/log/$name"
    done
    sync "$ROOT/etc/kiosk/log"/* # the installed copies are on disk before the card's go
    remove_certs
    log "log certificates placed in /etc/kiosk/log and removed from the boot partition"

    apt_install systemd-journal-remote
    local cert=- key=-
    if [[ -f $ROOT/etc/kiosk/log/client.crt ]]; then
        cert=$UPLOAD_CREDENTIALS/client.crt key=$UPLOAD_CREDENTIALS/client.key
    fi
    install -d "$ROOT/etc/systemd/journal-upload.conf.d"
    printf '# Set by the kiosk first boot (scripts/flash.sh --log-server).\n[Upload]\nURL=%s\nTrustedCertificateFile=%s/ca.crt\nServerCertificateFile=%s\nServerKeyFile=%s\n' \
        "$log_server" "$UPLOAD_CREDENTIALS" "$cert" "$key" \
        >"$ROOT/etc/systemd/journal-upload.conf.d/kiosk.conf"
    local dropin=$ROOT/etc/systemd/system/systemd-journal-upload.service.d
    install -d "$dropin"
    {
        printf '[Unit]\n# Keep trying while the studio is offline: never give up after failures.\n'
        printf 'StartLimitIntervalSec=0\n\n[Service]\n'
        printf '# The uploader runs as a dynamic user: systemd hands it the root-only files.\n'
        for name in "${names[@]}"; do
            printf 'LoadCredential=%s:/etc/kiosk/log/%s\n' "$name" "$name"
        done
        printf 'Restart=always\nRestartSec=30s\n'
    } >"$dropin/kiosk.conf"
    # What is logged while offline must still be there when the link returns.
    install -d "$ROOT/var/log/journal"
    if [[ -z $ROOT ]]; then
        systemd-tmpfiles --create --prefix /var/log/journal || true
        journalctl --flush || true
    fi
    systemctl daemon-reload
    systemctl enable systemd-journal-upload
    systemctl restart systemd-journal-upload
    log "systemd-journal-upload enabled: the journal goes to $log_server"
}

# The certificates first: whatever happens next, they are off the boot partition.
[[ -z $log_server ]] || setup_upload
((metrics != 1)) || setup_metrics
log "done"
