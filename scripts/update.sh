#!/bin/bash
# Update a kiosk over SSH; it rolls back by itself if the new release does not come up.
#
#   update.sh --host HOST --ssh-key FILE [--wheel FILE [--target ARCH-cpXY ...] | --wheelhouse DIR]
#             [--timeout SEC] [--settle SEC] [--port N] [--ssh-option OPT ...] [--dry-run]
#   update.sh --host HOST --ssh-key FILE --rollback
#
# --port: SSH port (default 22); --ssh-option OPT: passed to ssh/scp as `-o OPT`
# (e.g. UserKnownHostsFile=FILE).
# HOST is `name` or `user@name` (default user: tech, made by flash.sh). Without
# --wheel the newest dist/smartum_kiosk-*.whl is used, built first if there is none.
# The release travels as a locked wheelhouse (scripts/wheelhouse.sh: the kiosk wheel,
# its dependencies for the Pi - plus each --target - and requirements.lock with their
# hashes), so the kiosk installs it without the Internet; --wheelhouse DIR sends one
# made before. It is copied with kiosk.service, kiosk.sysusers and update-remote.sh
# to a temporary directory on the Pi, and update-remote.sh runs there as root,
# detached from this SSH session (systemd-run --unit kiosk-update-*): a cut connection
# does not interrupt it. Fresh venv /opt/kiosk/<version> beside the running one,
# journal copy, `kiosk selftest`, switch of the `current` symlink, restart, wait for
# READY=1 (then --settle seconds, default 20, without a restart), automatic rollback
# on failure. The journal and /etc/kiosk are not touched.
# Exit: 0 updated, 1 failed (the message says which release runs), 2 bad usage,
# 3 the connection was lost (the update goes on on the Pi; the log is named).

# Remote command lines are quoted here on purpose (remote_cmd, printf %q).
# shellcheck disable=SC2029
set -euo pipefail

PROG=update.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")

host="" key="" wheel="" wheelhouse="" timeout=90 settle=20 port=22 dry_run=0 rollback=0
targets=() ssh_options=()

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "ERROR: $1"; exit "${2:-1}"; }

while (($#)); do
    case $1 in
        --host | --ssh-key | --wheel | --wheelhouse | --target | --timeout | --settle | --port | \
            --ssh-option)
            if (($# < 2)) || [[ -z $2 || $2 == --* ]]; then
                die "$1 needs a value" 2
            fi
            case $1 in
                --host) host=$2 ;;
                --ssh-key) key=$2 ;;
                --wheel) wheel=$2 ;;
                --wheelhouse) wheelhouse=$2 ;;
                --target) targets+=("$2") ;;
                --timeout) timeout=$2 ;;
                --settle) settle=$2 ;;
                --port) port=$2 ;;
                --ssh-option) ssh_options+=(-o "$2") ;;
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
[[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || problems+=("--port $port: a TCP port (1-65535)")
if [[ -n $wheel ]]; then
    if [[ ! -f $wheel ]]; then
        problems+=("--wheel $wheel: no such file")
    elif ! [[ $(basename "$wheel") =~ ^smartum_kiosk-[0-9][0-9A-Za-z.+_]*-[^-]+-[^-]+-[^-]+\.whl$ ]]; then
        problems+=("--wheel $wheel: not a smartum_kiosk wheel")
    fi
fi
if [[ -n $wheelhouse ]]; then
    if [[ -n $wheel || ${#targets[@]} -gt 0 ]]; then
        problems+=("--wheelhouse $wheelhouse: give either --wheelhouse or --wheel/--target, not both")
    elif [[ ! -f $wheelhouse/requirements.lock ]]; then
        problems+=("--wheelhouse $wheelhouse: no requirements.lock there; make it with scripts/wheelhouse.sh")
    elif [[ $(find "$wheelhouse" -maxdepth 1 -name 'smartum_kiosk-*.whl' | wc -l) -ne 1 ]]; then
        problems+=("--wheelhouse $wheelhouse: expected one smartum_kiosk wheel")
    else
        while IFS= read -r name; do
            [[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || problems+=("--wheelhouse $wheelhouse: unexpected file name $name")
        done < <(find "$wheelhouse" -mindepth 1 -maxdepth 1 -printf '%f\n')
    fi
fi
for t in "${targets[@]}"; do
    [[ $t =~ ^(aarch64|x86_64)-cp3[0-9]{2}$ ]] || problems+=("--target $t: expected ARCH-cpXY, e.g. x86_64-cp313")
done
if ((${#problems[@]})); then
    for p in "${problems[@]}"; do
        say "$p"
    done
    exit 2
fi
[[ $host == *@* ]] || host="tech@$host"

SSH_OPTS=(-i "$key" -o "Port=$port" -o BatchMode=yes -o ConnectTimeout=15
    -o ServerAliveInterval=5 -o ServerAliveCountMax=6 "${ssh_options[@]}")

remote_cmd() { # ARG...: one shell-quoted command line for ssh
    local out="" a
    for a in "$@"; do
        out+="${out:+ }$(printf '%q' "$a")"
    done
    printf '%s' "$out"
}

if ((rollback)); then
    if ((dry_run)); then
        say "would run on $host: sudo kiosk-update --rollback --timeout $timeout"
        exit 0
    fi
    exec ssh "${SSH_OPTS[@]}" "$host" "$(remote_cmd sudo /usr/local/sbin/kiosk-update --rollback --timeout "$timeout")"
fi

if [[ -z $wheelhouse && -z $wheel ]]; then
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
if [[ -n $wheelhouse ]]; then
    wheel=$(find "$wheelhouse" -maxdepth 1 -name 'smartum_kiosk-*.whl')
fi
wheel_name=$(basename "$wheel")
[[ $wheel_name =~ ^[A-Za-z0-9._+-]+$ ]] || die "unexpected wheel file name: $wheel_name" 2
version=${wheel_name#smartum_kiosk-}
version=${version%%-*}
unit=kiosk-update-$(date -u +%Y%m%d%H%M%S)

if ((dry_run)); then
    if [[ -n $wheelhouse ]]; then
        say "would copy the wheelhouse $wheelhouse ($wheel_name) to $host"
    else
        say "would make the wheelhouse for $wheel_name (aarch64-cp311 aarch64-cp313 ${targets[*]}) and copy it to $host"
    fi
    say "would copy to $host: kiosk.service kiosk.sysusers update-remote.sh"
    say "would run on $host, detached: sudo systemd-run --unit $unit bash update-remote.sh --wheelhouse wheels --units . --timeout $timeout --settle $settle"
    exit 0
fi

STAGE=$(mktemp -d)
remote=""
started=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    rm -rf "$STAGE"
    # Once the update runs on the Pi it removes its own upload directory.
    if [[ -n $remote ]] && ((!started)); then
        ssh "${SSH_OPTS[@]}" "$host" "$(remote_cmd rm -rf "$remote")" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
mkdir "$STAGE/wheels"
if [[ -n $wheelhouse ]]; then
    cp -p "$wheelhouse"/* "$STAGE/wheels/"
else
    args=(--wheel "$wheel" --out "$STAGE/wheels")
    for t in aarch64-cp311 aarch64-cp313 "${targets[@]}"; do
        args+=(--target "$t")
    done
    bash "$HERE/wheelhouse.sh" "${args[@]}" || die "making the wheelhouse failed (see above)"
fi
cp "$PROJECT/systemd/kiosk.service" "$PROJECT/systemd/kiosk.sysusers" "$HERE/update-remote.sh" "$STAGE/"

say "connecting to $host"
remote=$(ssh "${SSH_OPTS[@]}" "$host" mktemp -d /tmp/kiosk-update.XXXXXX) ||
    die "cannot reach $host over ssh (check the address, the key and the Wi-Fi)"
[[ $remote =~ ^/tmp/kiosk-update\.[A-Za-z0-9]+$ ]] || die "unexpected answer from $host: $remote"
say "copying $version ($(du -sh "$STAGE" | cut -f1))"
scp -q -r "${SSH_OPTS[@]}" "$STAGE"/* "$host:$remote/" || die "copying to $host failed"
say "installing on $host as $unit (this takes a minute; it rolls back by itself on failure)"
started=1
status=0
ssh "${SSH_OPTS[@]}" "$host" "$(remote_cmd sudo systemd-run --quiet --wait --collect \
    --unit "$unit" --description "kiosk update to $version" --property TimeoutStartSec=infinity \
    /bin/bash "$remote/update-remote.sh" --wheelhouse "$remote/wheels" \
    --wheel "$remote/wheels/$wheel_name" --units "$remote" --timeout "$timeout" \
    --settle "$settle" --staging "$remote")" || status=$?
if ((status == 255)); then
    say "the connection to $host was lost; the update goes on there by itself."
    say "its log: ssh $host journalctl -u $unit; running release: ssh $host readlink /opt/kiosk/current"
    exit 3
fi
ssh "${SSH_OPTS[@]}" "$host" "$(remote_cmd sudo journalctl -u "$unit" -o cat --no-pager)" >&2 || true
if ((status == 0)); then
    say "updated to $version; check with: ssh $host sudo -u kiosk /opt/kiosk/current/bin/kiosk status"
else
    say "update to $version failed (exit $status); the log above says which release runs. Details: ssh $host journalctl -u kiosk -n 100"
fi
exit "$status"
