#!/bin/bash
# The device test on the Pi's architecture: the card written by scripts/flash.sh, on an
# arm64 Debian trixie stand-in holding what stock Raspberry Pi OS Lite holds, booted by
# qemu-system-aarch64 (-M virt -cpu cortex-a72, full emulation). What only the Pi's
# architecture shows: first boot with no network but the test backend, the offline
# install of the card's aarch64 wheelhouse on CPython 3.13, sudo for tech, receipts
# checked once over HTTPS on the serial port (ttyAMA0), and the kiosk's memory there.
#
#   device-test-arm64.sh [--keep] [--only STEP,...] [--figures docs/performance-arm64.json]
#
# --figures FILE writes memory-modes' figures (JSON) for bench/run_all.py, which reports them
# beside the x86-64 ones in docs/performance.md.
#
# The first run on a machine builds the arm64 root under qemu-user (about 20 minutes on
# two cores; cached after that, keyed on the package list). Called by .ci/run after the
# test command (scripts/test.sh), which keeps to its own time budget.
# Exit: 0 all assertions passed, 1 some failed, 77 cannot run here.

set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=(qemu-system-aarch64 qemu-aarch64-static update-binfmts mmdebstrap mcopy mkfs.vfat
    sfdisk mke2fs debugfs ssh ssh-keygen)
missing=()
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "arm64 device test: missing ${missing[*]} (apt-get install qemu-system-arm qemu-user-static binfmt-support mmdebstrap mtools dosfstools fdisk e2fsprogs openssh-client)" >&2
    exit 77
fi
[[ -x .venv/bin/python ]] || { echo "arm64 device test: no .venv; run scripts/test.sh first" >&2; exit 1; }
exec .venv/bin/python tests/device/run.py --arch arm64 "$@"
