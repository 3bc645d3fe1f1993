#!/bin/bash
# Make the locked wheelhouse a kiosk installs from without reaching PyPI.
#
#   wheelhouse.sh --wheel smartum_kiosk-VERSION-py3-none-any.whl --out DIR
#                 [--target ARCH-cpXY ...] [--constraints FILE]
#
# DIR gets the kiosk wheel, every runtime dependency as binary wheels for each target
# (default: aarch64-cp313, what the card runs: Raspberry Pi OS trixie 64-bit, CPython
# 3.13; add e.g. --target x86_64-cp311 for a development machine on CPython 3.11, the
# oldest the package supports), and requirements.lock: one
# `name==version --hash=sha256:...` line per project with the hash of every wheel of
# it, for `pip install --no-index --find-links DIR --require-hashes -r DIR/requirements.lock`.
# Versions come from constraints.txt. numpy is in it too, for a system without
# python3-numpy (stock Raspberry Pi OS Lite has none); where the system has numpy
# (e.g. with python3-picamera2, which is built against it) the install keeps the
# system's and leaves the wheel unused (scripts/update-remote.sh).
# Downloads are cached in ${XDG_CACHE_HOME:-~/.cache}/smartum-kiosk/wheels.
# Used by flash.sh and update.sh. Exit: 0 done, 1 failed, 2 bad arguments.

set -euo pipefail

PROG=wheelhouse.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
# Wheel file names as pip writes them; anything else is refused.
NAME_RE='^[A-Za-z0-9._+-]+\.whl$'

wheel="" out="" constraints=$PROJECT/constraints.txt
targets=()

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "ERROR: $1"; exit "${2:-1}"; }

while (($#)); do
    case $1 in
        --wheel | --out | --target | --constraints)
            if (($# < 2)) || [[ -z $2 || $2 == --* ]]; then die "$1 needs a value" 2; fi
            case $1 in
                --wheel) wheel=$2 ;;
                --out) out=$2 ;;
                --target) targets+=("$2") ;;
                --constraints) constraints=$2 ;;
            esac
            shift 2
            ;;
        *) die "unknown argument: $1" 2 ;;
    esac
done
((${#targets[@]})) || targets=(aarch64-cp313)
problems=()
[[ -f $wheel ]] || problems+=("--wheel ${wheel:-(missing)}: no such file")
[[ -n $out ]] || problems+=("--out DIR is required")
[[ -f $constraints ]] || problems+=("--constraints $constraints: no such file")
for t in "${targets[@]}"; do
    [[ $t =~ ^(aarch64|x86_64)-cp3([0-9]{2})$ ]] ||
        problems+=("--target $t: expected ARCH-cpXY, ARCH aarch64 or x86_64 (e.g. aarch64-cp313)")
done
if ((${#problems[@]})); then
    for p in "${problems[@]}"; do say "$p"; done
    exit 2
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/smartum-kiosk/wheels
key=$(sha256sum "$constraints" | cut -c1-12)
mkdir -p "$out"

for t in "${targets[@]}"; do
    arch=${t%-*} py=${t#*-cp}
    dir=$cache/$t-$key
    # .numpy: complete, with numpy (earlier caches left numpy out).
    if [[ ! -f $dir/.numpy ]]; then
        say "downloading the dependencies for $arch, CPython 3.${py#3}"
        rm -rf "$dir"
        mkdir -p "$dir"
        platforms=(--platform "manylinux2014_$arch")
        for glibc in $(seq 17 36); do
            platforms+=(--platform "manylinux_2_${glibc}_$arch")
        done
        "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-input \
            --only-binary=:all: "${platforms[@]}" --implementation cp \
            --python-version "3.${py#3}" --constraint "$constraints" --dest "$dir" "$wheel" ||
            die "downloading the wheels for $t failed (network? constraints?)"
        # The kiosk's own wheel changes with every release.
        find "$dir" -maxdepth 1 -name 'smartum_kiosk-*' -delete
        ls "$dir"/numpy-*.whl >/dev/null 2>&1 || die "no numpy wheel for $t among the downloads"
        touch "$dir/.numpy"
    fi
    find "$dir" -maxdepth 1 -name '*.whl' -exec cp -p {} "$out/" \;
done
cp -p "$wheel" "$out/"

# requirements.lock: every wheel in DIR, grouped by project and version.
for f in "$out"/*.whl; do
    [[ $(basename "$f") =~ $NAME_RE ]] || die "unexpected wheel file name: $(basename "$f")"
done
"$PYTHON" - "$out" <<'PY'
import hashlib
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
projects: dict[tuple[str, str], list[str]] = {}
for wheel in sorted(out.glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    name = re.sub(r"[-_.]+", "-", name).lower()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    projects.setdefault((name, version), []).append(digest)
versions: dict[str, set[str]] = {}
for name, version in projects:
    versions.setdefault(name, set()).add(version)
clash = {name: sorted(v) for name, v in versions.items() if len(v) > 1}
if clash:
    sys.exit(f"wheelhouse.sh: one version per project is needed, found {clash}")
lines = ["# Locked wheelhouse made by scripts/wheelhouse.sh; install with",
         "# pip install --no-index --find-links . --require-hashes -r requirements.lock"]
for (name, version), digests in sorted(projects.items()):
    hashes = " ".join(f"--hash=sha256:{d}" for d in sorted(set(digests)))
    lines.append(f"{name}=={version} {hashes}")
(out / "requirements.lock").write_text("\n".join(lines) + "\n")
PY
say "wheelhouse $out: $(find "$out" -maxdepth 1 -name '*.whl' | wc -l) wheels for ${targets[*]}"
