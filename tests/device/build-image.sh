#!/bin/bash
# Build the Raspberry Pi OS stand-in for the device test: a Debian trixie amd64 card
# image laid out like a Pi card.
#
#   build-image.sh OUT.img
#
#   MBR, partition 1: FAT32 labelled `bootfs` (config.txt, cmdline.txt, the kernel and
#                     initrd, as the Pi firmware reads them)
#        partition 2: ext4 labelled `rootfs`, filled with `mke2fs -d` (no loop mounts)
# The root file system comes from `mmdebstrap` with the packages in packages.txt
# (Debian's own packages only; nothing of the kiosk). As on Raspberry Pi OS trixie,
# cloud-init reads its seed from the bootfs partition mounted at /boot/firmware
# (NoCloud, seedfrom file:///boot/firmware, the mount required before cloud-init
# starts), and netplan renders the network for NetworkManager.
#
# The finished image is cached in ${XDG_CACHE_HOME:-~/.cache}/smartum-kiosk/device-test/
# under a key made of the package list and this script; OUT.img is a sparse copy.
# SUITE (default trixie) and MIRROR (default http://deb.debian.org/debian) can be set.
# Needs root (or mmdebstrap's unshare mode), mmdebstrap, mtools, dosfstools, fdisk,
# e2fsprogs.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DISK_ID=0x4b696f73          # MBR disk identifier: root=PARTUUID=4b696f73-02
BOOT_START=8192             # sectors (4 MiB), as Raspberry Pi OS
BOOT_MB=256
ROOT_MB=2560

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

(($# == 1)) || die "usage: build-image.sh OUT.img"
out=$1
for tool in mmdebstrap mcopy mkfs.vfat sfdisk mke2fs; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install mmdebstrap mtools dosfstools fdisk e2fsprogs)"
done

mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/packages.txt" | xargs -n1)
key=$( { printf '%s\n' "$SUITE" "${packages[@]}"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/smartum-kiosk/device-test
cached=$cache/standin-$SUITE-$key.img

if [[ -f $cached ]]; then
    log "using the cached stand-in $cached"
    cp --sparse=always "$cached" "$out"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

log "mmdebstrap $SUITE with ${#packages[@]} packages from $MIRROR"
include=$(IFS=,; printf '%s' "${packages[*]}")
mmdebstrap --variant=apt --components=main --include="$include" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$SUITE" "$rootfs" "$MIRROR" >&2

log "configuring the root file system like a Pi card"
mkdir -p "$rootfs/boot/firmware"
cat >"$rootfs/etc/fstab" <<EOF
PARTUUID=${DISK_ID#0x}-02  /               ext4  defaults,noatime  0  1
PARTUUID=${DISK_ID#0x}-01  /boot/firmware  vfat  defaults          0  2
EOF
printf 'raspberrypi\n' >"$rootfs/etc/hostname"
# As Raspberry Pi OS trixie (rpi-cloud-init-mods): the seed (user-data, meta-data,
# network-config) is on the FAT boot partition, mounted before cloud-init starts.
cat >"$rootfs/etc/cloud/cloud.cfg.d/99_raspberry-pi.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    seedfrom: file:///boot/firmware
EOF
mkdir -p "$rootfs/etc/systemd/system/cloud-init-main.service.d"
cat >"$rootfs/etc/systemd/system/cloud-init-main.service.d/boot-firmware.conf" <<'EOF'
[Unit]
RequiresMountsFor=/boot/firmware
EOF
# As Raspberry Pi OS: NetworkManager renders what netplan (and cloud-init) configure,
# so a configured Wi-Fi without a radio does not hold up the boot.
mkdir -p "$rootfs/etc/netplan"
printf 'network:\n  version: 2\n  renderer: NetworkManager\n' >"$rootfs/etc/netplan/00-network-manager.yaml"
chmod 600 "$rootfs/etc/netplan/00-network-manager.yaml"
# The image's own SSH host keys are made again by cloud-init on the first boot.
rm -f "$rootfs"/etc/ssh/ssh_host_*
rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"
: >"$rootfs/etc/machine-id"

kernel=$(cd "$rootfs/boot" && find . -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n 1)
initrd=$(cd "$rootfs/boot" && find . -maxdepth 1 -name 'initrd.img-*' | sort | tail -n 1)
[[ -n $kernel && -n $initrd ]] || die "no kernel or initrd in the root file system"

log "laying out the card"
img=$work/card.img
truncate -s $(((BOOT_START / 2048 + BOOT_MB + ROOT_MB) * 1024 * 1024)) "$img"
boot_sectors=$((BOOT_MB * 2048))
root_start=$((BOOT_START + boot_sectors))
sfdisk -q "$img" <<EOF
label: dos
label-id: $DISK_ID
start=$BOOT_START, size=$boot_sectors, type=c
start=$root_start, type=83
EOF
mkfs.vfat -F 32 -s 1 -n bootfs --offset "$BOOT_START" "$img" $((boot_sectors / 2)) >/dev/null
export MTOOLS_SKIP_CHECK=1
fat="$img@@$((BOOT_START * 512))"
cat >"$work/config.txt" <<EOF
# Raspberry Pi OS stand-in (amd64): kernel and initramfs as the firmware loads them
kernel=${kernel#./}
initramfs ${initrd#./} followkernel
camera_auto_detect=1
[all]
EOF
printf 'console=ttyS0,115200 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes rootwait net.ifnames=0\n' \
    "${DISK_ID#0x}" >"$work/cmdline.txt"
mcopy -i "$fat" "$work/config.txt" "$work/cmdline.txt" "$rootfs/boot/$kernel" "$rootfs/boot/$initrd" ::
root_kib=$(((ROOT_MB * 1024 * 1024) / 1024))
mke2fs -q -t ext4 -L rootfs -d "$rootfs" -E offset=$((root_start * 512)) "$img" "${root_kib}k"

mv "$img" "$cached"
find "$cache" -maxdepth 1 -name "standin-*.img" ! -name "${cached##*/}" -delete
log "built $cached"
cp --sparse=always "$cached" "$out"
