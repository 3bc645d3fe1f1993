#!/bin/bash
# The device test: a card written by scripts/flash.sh (on a Debian trixie stand-in for
# Raspberry Pi OS) boots in QEMU under real systemd and cloud-init, and is checked over
# SSH and its serial ports. Pieces: tests/device/ (build-image.sh, run.py).
#
#   device-test.sh [--keep] [--only STEP,...]
#
# Needs root (the image build), qemu-system-x86, mmdebstrap, mtools, dosfstools,
# fdisk, e2fsprogs, openssh-client and the project's .venv (scripts/test.sh makes it).
# Exit: 0 all assertions passed, 1 some failed, 77 cannot run here (no QEMU).

set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=(qemu-system-x86_64 mmdebstrap mcopy mkfs.vfat sfdisk mke2fs debugfs ssh ssh-keygen)
missing=()
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "device test: missing ${missing[*]} (apt-get install qemu-system-x86 mmdebstrap mtools dosfstools fdisk e2fsprogs openssh-client)" >&2
    exit 77
fi
[[ -x .venv/bin/python ]] || { echo "device test: no .venv; run scripts/test.sh first" >&2; exit 1; }
exec .venv/bin/python tests/device/run.py "$@"
