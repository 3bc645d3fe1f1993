#!/bin/bash
# Update a kiosk over SSH; it rolls back by itself if the new release does not come up.
#
#   update.sh --host HOST --ssh-key FILE [--wheel FILE] [--timeout SEC] [--settle SEC] [--dry-run]
#   update.sh --host HOST --ssh-key FILE --rollback
#
# HOST is `name` or `user@name` (default user: tech, made by flash.sh). Without
# --wheel the newest dist/smartum_kiosk-*.whl is used, built first if there is none.
# Copies the wheel, kiosk.service, kiosk.sysusers and update-remote.sh to a temporary
# directory on the Pi and runs update-remote.sh there with sudo: fresh venv
# /opt/kiosk/<version> beside the running one, `kiosk selftest`, switch of the
# `current` symlink, restart, wait for READY=1 (then --settle seconds, default 20,
# without a restart), automatic rollback on failure.
# The journal and /etc/kiosk are not touched. Exit: 0 updated, 1 failed, 2 bad usage.

set -euo pipefail

PROG=update.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")

host="" key="" wheel="" timeout=90 settle=20 dry_run=0 rollback=0

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "ERROR: $1"; exit "${2:-1}"; }

while (($#)); do
    case $1 in
        --host | --ssh-key | --wheel | --timeout | --settle)
            if (($# < 2)) || [[ -z $2 || $2 == --* ]]; then
                die "$1 needs a value" 2
            fi
            case $1 in
                --host) host=$2 ;;
                --ssh-key) key=$2 ;;
                --wheel) wheel=$2 ;;
                --timeout) timeout=$2 ;;
                --settle) settle=$2 ;;
            esac
            shift 2
            ;;
        --dry-run) dry_run=1; shift ;;
        --rollback) rollback=1; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" 2 ;;
    esac
done

problems=()
[[ -n $host ]] || problems+=("--host is required (the kiosk's name or address)")
[[ -z $host || $host =~ ^([a-z_][a-z0-9_-]*@)?[A-Za-z0-9.:-]+$ ]] || problems+=("--host $host: not a host name")
if [[ -z $key ]]; then
    problems+=("--ssh-key is required (the private key matching the one given to flash.sh)")
elif [[ ! -f $key ]]; then
    problems+=("--ssh-key $key: no such file")
fi
[[ $timeout =~ ^[0-9]+$ && $timeout -gt 0 ]] || problems+=("--timeout $timeout: seconds, > 0")
[[ $settle =~ ^[0-9]+$ ]] || problems+=("--settle $settle: seconds the service must stay up")
if [[ -n $wheel ]]; then
    if [[ ! -f $wheel ]]; then
        problems+=("--wheel $wheel: no such file")
    elif ! [[ $(basename "$wheel") =~ ^smartum_kiosk-[0-9][0-9A-Za-z.+_]*-[^-]+-[^-]+-[^-]+\.whl$ ]]; then
        problems+=("--wheel $wheel: not a smartum_kiosk wheel")
    fi
fi
if ((${#problems[@]})); then
    for p in "${problems[@]}"; do
        say "$p"
    done
    exit 2
fi
[[ $host == *@* ]] || host="tech@$host"

SSH_OPTS=(-i "$key" -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=5
    -o ServerAliveCountMax=6)

if ((rollback)); then
    if ((dry_run)); then
        say "would run on $host: sudo kiosk-update --rollback"
        exit 0
    fi
    exec ssh "${SSH_OPTS[@]}" "$host" sudo /usr/local/sbin/kiosk-update --rollback --timeout "$timeout"
fi

if [[ -z $wheel ]]; then
    wheel=$(find "$PROJECT/dist" -maxdepth 1 -name 'smartum_kiosk-*.whl' -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -n 1 | cut -d' ' -f2- || true)
    if [[ -z $wheel ]]; then
        if ((dry_run)); then
            say "would build the wheel: python3 -m pip wheel --no-deps $PROJECT -w $PROJECT/dist"
            wheel=$PROJECT/dist/smartum_kiosk-VERSION-py3-none-any.whl
        else
            python3 -m pip wheel --no-deps --quiet "$PROJECT" -w "$PROJECT/dist" >&2 ||
                die "building the wheel failed; build it and pass --wheel FILE"
            wheel=$(find "$PROJECT/dist" -maxdepth 1 -name 'smartum_kiosk-*.whl' | sort | tail -n 1)
        fi
    fi
fi

files=("$wheel" "$PROJECT/systemd/kiosk.service" "$PROJECT/systemd/kiosk.sysusers"
    "$HERE/update-remote.sh")
if ((dry_run)); then
    say "would copy to $host: ${files[*]##*/}"
    say "would run on $host: sudo bash update-remote.sh --wheel $(basename "$wheel") --units . --timeout $timeout --settle $settle"
    exit 0
fi

say "connecting to $host"
remote=$(ssh "${SSH_OPTS[@]}" "$host" mktemp -d /tmp/kiosk-update.XXXXXX) ||
    die "cannot reach $host over ssh (check the address, the key and the Wi-Fi)"
trap 'ssh "${SSH_OPTS[@]}" "$host" rm -rf "$remote" >/dev/null 2>&1 || true' EXIT
say "copying $(basename "$wheel")"
scp -q "${SSH_OPTS[@]}" "${files[@]}" "$host:$remote/" || die "copying to $host failed"
say "installing on $host (this takes a minute; it rolls back by itself on failure)"
status=0
ssh "${SSH_OPTS[@]}" "$host" sudo bash "$remote/update-remote.sh" \
    --wheel "$remote/$(basename "$wheel")" --units "$remote" --timeout "$timeout" \
    --settle "$settle" || status=$?
if ((status == 0)); then
    say "updated; check with: ssh $host sudo -u kiosk /opt/kiosk/current/bin/kiosk status"
else
    say "update failed (exit $status); the kiosk runs the previous release. Details: ssh $host journalctl -u kiosk -n 100"
fi
exit "$status"
