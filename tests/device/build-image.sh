#!/bin/bash
# Build the Raspberry Pi OS stand-in for the device test: a Debian trixie card image
# laid out like a Pi card, holding what stock Raspberry Pi OS trixie Lite holds.
#
#   build-image.sh [--arch amd64|arm64] OUT.img
#
#   MBR, partition 1: FAT32 labelled `bootfs` (config.txt, cmdline.txt, the kernel and
#                     initrd, as the Pi firmware reads them)
#        partition 2: ext4 labelled `rootfs`, filled with `mke2fs -d` (no loop mounts)
# The root file system comes from `mmdebstrap` (debootstrap's default set, as pi-gen
# bootstraps) with the packages in packages.txt and Recommends, as pi-gen installs
# them, plus Debian's kernel for the architecture in place of the Pi's (Debian's own
# packages only; nothing of the kiosk). As on Raspberry Pi OS trixie, cloud-init reads
# its seed from the bootfs partition mounted at /boot/firmware (NoCloud, seedfrom
# file:///boot/firmware, the mount required before cloud-init starts), netplan renders
# the network for NetworkManager, and bootfs carries the image's stock seed: meta-data
# with `dsmode: local`, a user-data of comments and a comment-only network-config.
#
# ifupdown goes as pi-gen's bootstrap excludes it (with it, cloud-init would render the
# network for ifupdown instead of netplan), modemmanager as in pi-gen; apparmor, which
# only Debian's kernel recommends (the Pi's does not), goes too.
#
# arm64 is built under qemu-user (binfmt_misc; this script registers qemu-aarch64
# when it is not yet) and takes about 20 minutes on two cores; its kernel is booted by
# qemu-system-aarch64 -M virt (console hvc0, a virtio console, so the PL011 ttyAMA0 is
# free for the scanner as on a Pi), the amd64 one by qemu-system-x86_64 (console
# ttyS0, scanner ttyS1).
#
# The finished image is cached in ${XDG_CACHE_HOME:-~/.cache}/smartum-kiosk/device-test/
# under a key made of the package list and this script; OUT.img is a sparse copy.
# SUITE (default trixie) and MIRROR (default http://deb.debian.org/debian) can be set.
# Needs root (or mmdebstrap's unshare mode), mmdebstrap, mtools, dosfstools, fdisk,
# e2fsprogs.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=${SUITE:-trixie}
ARCH=amd64
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DISK_ID=0x4b696f73          # MBR disk identifier: root=PARTUUID=4b696f73-02
BOOT_START=8192             # sectors (4 MiB), as Raspberry Pi OS
BOOT_MB=256
ROOT_MB=4096

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ${1:-} == --arch ]]; then
    ARCH=${2:-}
    shift 2 || true
fi
(($# == 1)) || die "usage: build-image.sh [--arch amd64|arm64] OUT.img"
out=$1
case $ARCH in
    amd64) kernel_pkg=linux-image-cloud-amd64 console=ttyS0 ;;
    arm64) kernel_pkg=linux-image-cloud-arm64 console=hvc0 ;;
    *) die "--arch $ARCH: amd64 or arm64" ;;
esac
for tool in mmdebstrap mcopy mkfs.vfat sfdisk mke2fs; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install mmdebstrap mtools dosfstools fdisk e2fsprogs)"
done

mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/packages.txt" | xargs -n1)
packages+=("$kernel_pkg")
key=$( { printf '%s\n' "$SUITE" "$ARCH" "${packages[@]}"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/smartum-kiosk/device-test
cached=$cache/standin-$SUITE-$ARCH-$key.img

if [[ -f $cached ]]; then
    log "using the cached stand-in $cached"
    cp --sparse=always "$cached" "$out"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

if [[ $ARCH != "$(dpkg --print-architecture)" ]]; then
    # Foreign root: every maintainer script runs under qemu-user.
    [[ -e /proc/sys/fs/binfmt_misc/register ]] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 ||
        die "qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support)"
fi
log "mmdebstrap $SUITE $ARCH with ${#packages[@]} packages and their Recommends from $MIRROR"
include=$(IFS=,; printf '%s' "${packages[*]}")
# Speed-ups that leave the installed system as it is: no fsync per file, no man-db
# index (the manual pages are not installed), no documentation or translations.
# shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's
mmdebstrap --variant=important --architectures="$ARCH" --components=main --include="$include" \
    --aptopt='Acquire::Retries "3"' --aptopt='APT::Install-Recommends "true"' \
    --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --essential-hook='echo "man-db man-db/auto-update boolean false" | chroot "$1" debconf-set-selections' \
    --customize-hook='chroot "$1" apt-get -y -q purge ifupdown modemmanager apparmor >/dev/null 2>&1 || true' \
    "$SUITE" "$rootfs" "$MIRROR" >&2
for pkg in python3-numpy python3-systemd libzbar0t64 python3-serial python3-pil i2c-tools \
    prometheus-node-exporter systemd-journal-remote ifupdown apparmor modemmanager; do
    if dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii'; then
        die "$pkg is in the root file system; stock Raspberry Pi OS Lite has none"
    fi
done

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
# Raspberry Pi OS stand-in ($ARCH): kernel and initramfs as the firmware loads them
kernel=${kernel#./}
initramfs ${initrd#./} followkernel
camera_auto_detect=1
[all]
EOF
# The stock seed of a Raspberry Pi OS trixie image (pi-gen stage2/04-cloud-init), which
# flash.sh finds and replaces.
cat >"$work/meta-data" <<'EOF'
# This is the meta-data configuration file for cloud-init. Please refer to the
# cloud-init documentation for more information:
#
# https://cloudinit.readthedocs.io/

# Set the datasource mode to "local". This ensures that user-data is acted upon
# prior to bringing up the network (because everything about the datasource is
# assumed to be local).
dsmode: local

# Specifies the "unique" identifier of the instance.
instance_id: rpios-image
EOF
cat >"$work/user-data" <<'EOF'
#cloud-config

# This is the user-data configuration file for cloud-init. Please refer to the
# cloud-init documentation for more information:
#
# https://cloudinit.readthedocs.io/
#
## Install additional packages on first boot
#packages:
#- avahi-daemon
EOF
cat >"$work/network-config" <<'EOF'
# This file contains a netplan-compatible configuration which cloud-init will
# apply on first-boot (note: it will *not* update the config after the first
# boot).

#network:
#  version: 2
#
#  ethernets:
#    eth0:
#      dhcp4: true
#      optional: true
EOF
printf 'console=%s,115200 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes rootwait net.ifnames=0\n' \
    "$console" "${DISK_ID#0x}" >"$work/cmdline.txt"
mcopy -i "$fat" "$work/config.txt" "$work/cmdline.txt" "$work/meta-data" "$work/user-data" \
    "$work/network-config" "$rootfs/boot/$kernel" "$rootfs/boot/$initrd" ::
root_kib=$(((ROOT_MB * 1024 * 1024) / 1024))
mke2fs -q -t ext4 -L rootfs -d "$rootfs" -E offset=$((root_start * 512)) "$img" "${root_kib}k"

mv "$img" "$cached"
find "$cache" -maxdepth 1 -name "standin-$SUITE-$ARCH-*.img" ! -name "${cached##*/}" -delete
log "built $cached"
cp --sparse=always "$cached" "$out"
