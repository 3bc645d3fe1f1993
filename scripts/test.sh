#!/usr/bin/env bash
# Install everything the test suite needs, then run ruff, mypy, pytest and the device
# test (scripts/device-test.sh: the flashed card booted in QEMU).
# Usage: scripts/test.sh [--device | --no-device] [--arm64] [extra pytest arguments]
#   default      the device test runs after the unit tests; where QEMU cannot be
#                installed it is skipped with one line saying so
#   --device     the device test must run (missing QEMU is a failure)
#   --no-device  unit tests only
#   --arm64      then the device test on arm64 too (scripts/device-test-arm64.sh, full
#                emulation; CI runs it). Its root file system, when not cached, is built
#                under qemu-user while the amd64 device test runs (one core each).
set -euo pipefail
cd "$(dirname "$0")/.."

device=auto
arm64=no
args=()
for arg in "$@"; do
    case $arg in
        --device) device=yes ;;
        --no-device) device=no ;;
        --arm64) arm64=yes ;;
        *) args+=("$arg") ;;
    esac
done

APT_PACKAGES=(libzbar0 mtools shellcheck dosfstools fdisk e2fsprogs systemd cloud-init
    libsystemd-dev pkg-config gcc python3-dev prometheus systemd-journal-remote)
DEVICE_PACKAGES=(qemu-system-x86 qemu-system-arm qemu-user-static binfmt-support mmdebstrap
    openssh-client)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_install() { # PACKAGE...: install those that are missing
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "Installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}"
}
apt_install "${APT_PACKAGES[@]}"
device_skip=""
if [ "$device" != no ] && ! apt_install "${DEVICE_PACKAGES[@]}" >/dev/null 2>&1; then
    device_skip="QEMU/mmdebstrap cannot be installed here (apt-get install ${DEVICE_PACKAGES[*]} failed)"
fi

# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "${args[@]}" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

[ "$device" != no ] || exit 0
echo "== device test"
if [ -n "$device_skip" ]; then
    if [ "$device" = yes ]; then
        echo "device test: FAILED to start: $device_skip" >&2
        exit 1
    fi
    echo "device test: SKIPPED: $device_skip"
    exit 0
fi
prebuild=""
if [ "$arm64" = yes ]; then
    # The arm64 stand-in takes over half an hour under qemu-user when not cached: build it
    # beside the amd64 device test (its own output, checked below).
    prebuild=$(mktemp -d)
    "${sudo_cmd[@]}" bash tests/device/build-image.sh --arch arm64 "$prebuild/standin.img" \
        >"$prebuild/build.log" 2>&1 &
    prebuild_pid=$!
fi
dstatus=0
"${sudo_cmd[@]}" bash scripts/device-test.sh || dstatus=$?
if [ -n "$prebuild" ]; then
    bstatus=0
    wait "$prebuild_pid" || bstatus=$?
    echo "arm64 stand-in built beside the amd64 device test (exit $bstatus):"
    grep '^build-image:' "$prebuild/build.log" || true
    [ "$bstatus" -eq 0 ] || tail -n 40 "$prebuild/build.log" >&2
    "${sudo_cmd[@]}" rm -rf "$prebuild"
fi
if [ "$dstatus" -eq 77 ] && [ "$device" != yes ]; then
    echo "device test: SKIPPED (see the line above)"
    dstatus=0
fi
[ "$dstatus" -eq 0 ] || exit "$dstatus"
[ "$arm64" = yes ] || exit 0
echo "== device test (arm64)"
"${sudo_cmd[@]}" bash scripts/device-test-arm64.sh
