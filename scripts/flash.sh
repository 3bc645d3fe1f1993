#!/bin/bash
# Prepare a Raspberry Pi OS image file or SD card as a SmartumPay counter kiosk.
#
#   flash.sh --image raspios.img[.xz] (--out kiosk.img | --device /dev/sdX)
#            --hostname NAME --ssh-key KEY.pub
#            [--wifi-ssid SSID --wifi-psk-file FILE --wifi-country FI]
#            [--config kiosk.toml] [--client-secret-file FILE] [--ca-bundle FILE]
#            [--wheel FILE [--target ARCH-cpXY ...] | --wheelhouse DIR]
#            [--yes] [--dry-run]
#            [--metrics [--metrics-listen ADDR:PORT]]
#            [--log-server https://HOST[:PORT] --log-ca FILE [--log-cert FILE --log-key FILE]]
#
# The image is copied (or decompressed) to --out, or written to --device. Then the
# FAT boot partition gets, through mtools (no mounting; no root for image files):
#   user-data       cloud-init: technician user `tech` with the SSH key only (password
#                   login off), hostname, first-boot install (no apt package list)
#   meta-data       instance-id
#   network-config  Wi-Fi and wired Ethernet (netplan v2), only with --wifi-ssid
#   config.txt      I2C and camera enabled (config/config.txt appended)
#   cmdline.txt     Wi-Fi country (cfg80211.ieee80211_regdom)
#   ssh             enables the SSH server
#   kiosk/          wheels/ (the locked wheelhouse: the kiosk wheel, every dependency
#                   for the Pi and requirements.lock with their hashes), kiosk.toml,
#                   client_secret, ca_bundle.pem (--ca-bundle: the CA of a backend
#                   with a private CA; the config then says
#                   ca_bundle = "/etc/kiosk/ca_bundle.pem"), kiosk.service,
#                   kiosk.sysusers, firstboot.sh, update-remote.sh, kiosk-packages.sh
# The wheelhouse is made by scripts/wheelhouse.sh (this needs PyPI, here, once; the
# kiosk's first boot then installs offline): for --wheel (default: the newest
# dist/smartum_kiosk-*.whl) and the Pi's targets aarch64-cp311 (bookworm) and
# aarch64-cp313 (trixie), plus each --target. --wheelhouse DIR takes one made before,
# so that every kiosk of a chain gets the same bits.
# On first boot scripts/firstboot.sh installs the kiosk and deletes kiosk/client_secret
# and network-config (the Wi-Fi passphrase).
# Fleet options (Prometheus node_exporter, journal upload; scripts/_flash_fleet.sh):
# kiosk/ also gets fleet-firstboot.sh, fleet.conf and log/ (certificates), and
# user-data runs fleet-firstboot.sh after firstboot.sh.
# Needs a Raspberry Pi OS image that runs cloud-init from the boot partition.
#
# Exit status: 0 done, 1 failed, 2 bad arguments (one message per problem).

set -euo pipefail

PROG=flash.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")
TECH_USER=tech

image="" out="" device="" hostname="" ssh_key="" wifi_ssid="" wifi_psk_file=""
wifi_country="" config="" secret_file="" ca_bundle="" wheel="" wheelhouse="" yes=0 dry_run=0
targets=()
problems=()

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
bad() { problems+=("$*"); }
usage_exit() { say "$1"; say "see the comment at the top of scripts/flash.sh for usage"; exit 2; }

need_value() { # OPTION VALUE...: the option has a value
    if (($# < 2)) || [[ -z $2 || $2 == --* ]]; then
        usage_exit "$1 needs a value"
    fi
}

# shellcheck source=scripts/_flash_fleet.sh disable=SC1091
source "$HERE/_flash_fleet.sh"
# shellcheck source=scripts/_flash_debs.sh disable=SC1091
source "$HERE/_flash_debs.sh"

while (($#)); do
    case $1 in
        --metrics) fleet_option "$1"; shift ;;
        --metrics-listen | --log-server | --log-ca | --log-cert | --log-key)
            need_value "$@"
            fleet_option "$1" "$2"
            shift 2
            ;;
        --image | --out | --device | --hostname | --ssh-key | --wifi-ssid | --wifi-psk-file | \
            --wifi-country | --config | --client-secret-file | --ca-bundle | --wheel | --wheelhouse | \
            --target)
            need_value "$@"
            case $1 in
                --image) image=$2 ;;
                --out) out=$2 ;;
                --device) device=$2 ;;
                --hostname) hostname=$2 ;;
                --ssh-key) ssh_key=$2 ;;
                --wifi-ssid) wifi_ssid=$2 ;;
                --wifi-psk-file) wifi_psk_file=$2 ;;
                --wifi-country) wifi_country=$2 ;;
                --config) config=$2 ;;
                --client-secret-file) secret_file=$2 ;;
                --ca-bundle) ca_bundle=$2 ;;
                --wheel) wheel=$2 ;;
                --wheelhouse) wheelhouse=$2 ;;
                --target) targets+=("$2") ;;
            esac
            shift 2
            ;;
        --yes) yes=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) usage_exit "unknown argument: $1" ;;
    esac
done

# --- validation: collect every problem, then exit 2 -------------------------------

file_mode() { stat -c '%a' "$1"; }

check_secret_file() { # OPTION FILE: exists, non-empty, not readable by group/others
    if [[ ! -f $2 ]]; then
        bad "$1 $2: no such file"
    elif [[ ! -s $2 ]]; then
        bad "$1 $2: file is empty"
    elif (($(file_mode "$2") % 100 != 0)); then
        bad "$1 $2: readable by others (mode $(file_mode "$2")); run: chmod 600 $2"
    fi
}

if [[ -z $image ]]; then
    bad "--image is required (a Raspberry Pi OS .img or .img.xz)"
elif [[ ! -f $image ]]; then
    bad "--image $image: no such file"
elif [[ $image != *.img && $image != *.img.xz ]]; then
    bad "--image $image: expected a .img or .img.xz file"
fi

if [[ -n $out && -n $device ]] || [[ -z $out && -z $device ]]; then
    bad "give exactly one of --out FILE or --device /dev/sdX"
elif [[ -n $out ]]; then
    if [[ ! -d $(dirname "$out") ]]; then
        bad "--out $out: directory $(dirname "$out") does not exist"
    elif [[ -e $out && -n $image && -e $image && $out -ef $image ]]; then
        bad "--out $out: is the input image; give a new file name"
    elif [[ -e $out && $yes -eq 0 ]]; then
        bad "--out $out: already exists; add --yes to overwrite it"
    fi
fi

if [[ -z $hostname ]]; then
    bad "--hostname is required (e.g. studio-counter-1)"
elif ! [[ $hostname =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]]; then
    bad "--hostname $hostname: use letters, digits and '-' (1-63, not starting or ending with '-')"
fi

KEY_RE='^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [[:print:]]*)?$'
ssh_key_line=""
if [[ -z $ssh_key ]]; then
    bad "--ssh-key is required: password login is disabled, the key is the only way in"
elif [[ ! -f $ssh_key ]]; then
    bad "--ssh-key $ssh_key: no such file"
elif grep -q 'PRIVATE KEY' "$ssh_key"; then
    bad "--ssh-key $ssh_key: this is a private key; give the public one ($ssh_key.pub)"
else
    ssh_key_line=$(head -n 1 "$ssh_key" | tr -d '\r')
    if ! [[ $ssh_key_line =~ $KEY_RE ]] ||
        { command -v ssh-keygen >/dev/null && ! ssh-keygen -l -f "$ssh_key" >/dev/null 2>&1; }; then
        bad "--ssh-key $ssh_key: not an OpenSSH public key (expected 'ssh-ed25519 AAAA... comment')"
    fi
fi

wifi_psk=""
if [[ -n $wifi_ssid || -n $wifi_psk_file || -n $wifi_country ]]; then
    if [[ -z $wifi_ssid ]]; then
        bad "--wifi-ssid is required with --wifi-psk-file/--wifi-country"
    elif ((${#wifi_ssid} > 32)) || [[ $wifi_ssid =~ [[:cntrl:]] ]]; then
        bad "--wifi-ssid: 1-32 characters, no control characters"
    fi
    if [[ -z $wifi_psk_file ]]; then
        bad "--wifi-psk-file is required with --wifi-ssid (the passphrase is never given on the command line)"
    else
        check_secret_file --wifi-psk-file "$wifi_psk_file"
        if [[ -f $wifi_psk_file && -s $wifi_psk_file ]]; then
            wifi_psk=$(head -n 1 "$wifi_psk_file" | tr -d '\r\n')
            if ! [[ $wifi_psk =~ ^[[:print:]]{8,63}$ || $wifi_psk =~ ^[0-9A-Fa-f]{64}$ ]]; then
                bad "--wifi-psk-file $wifi_psk_file: a WPA passphrase is 8-63 printable characters (or 64 hex digits)"
            fi
        fi
    fi
    wifi_country=${wifi_country^^}
    if [[ -z $wifi_country ]]; then
        bad "--wifi-country is required with --wifi-ssid (two letters, e.g. FI)"
    elif ! [[ $wifi_country =~ ^[A-Z]{2}$ ]]; then
        bad "--wifi-country $wifi_country: two letters (ISO 3166), e.g. FI"
    fi
fi

if [[ -n $config ]]; then
    if [[ ! -f $config ]]; then
        bad "--config $config: no such file"
    elif command -v python3 >/dev/null; then
        if ! msg=$(python3 - "$config" 2>&1 <<'PY'
import sys
try:
    import tomllib
except ImportError:          # Python < 3.11 on this computer: cannot check here
    sys.exit(0)
try:
    with open(sys.argv[1], "rb") as f:
        data = tomllib.load(f)
except tomllib.TOMLDecodeError as exc:
    sys.exit(f"not valid TOML: {exc}")
path = data.get("backend", {}).get("client_secret_file")
if path != "/etc/kiosk/client_secret":
    sys.exit(f"backend.client_secret_file must be /etc/kiosk/client_secret (is {path!r})")
PY
        ); then
            bad "--config $config: $msg"
        fi
    fi
fi
if [[ -n $secret_file ]]; then
    check_secret_file --client-secret-file "$secret_file"
    if [[ -f $secret_file ]] && (($(wc -l <"$secret_file") > 1)); then
        bad "--client-secret-file $secret_file: expected one line"
    fi
fi

if [[ -n $ca_bundle ]]; then
    if [[ ! -f $ca_bundle ]]; then
        bad "--ca-bundle $ca_bundle: no such file"
    elif ! grep -q -- '-----BEGIN CERTIFICATE-----' "$ca_bundle"; then
        bad "--ca-bundle $ca_bundle: no PEM certificate in it (-----BEGIN CERTIFICATE-----)"
    fi
fi

if [[ -n $wheel ]]; then
    if [[ ! -f $wheel ]]; then
        bad "--wheel $wheel: no such file"
    elif ! [[ $(basename "$wheel") =~ ^smartum_kiosk-[0-9][0-9A-Za-z.+_]*-[^-]+-[^-]+-[^-]+\.whl$ ]]; then
        bad "--wheel $wheel: not a smartum_kiosk wheel (smartum_kiosk-VERSION-py3-none-any.whl)"
    elif [[ $(head -c 2 "$wheel") != PK ]]; then
        bad "--wheel $wheel: not a zip file"
    fi
fi

if [[ -n $wheelhouse ]]; then
    if [[ -n $wheel || ${#targets[@]} -gt 0 ]]; then
        bad "--wheelhouse $wheelhouse: give either --wheelhouse or --wheel/--target, not both"
    elif [[ ! -f $wheelhouse/requirements.lock ]]; then
        bad "--wheelhouse $wheelhouse: no requirements.lock there; make it with scripts/wheelhouse.sh"
    else
        shopt -s nullglob
        kiosk_wheels=("$wheelhouse"/smartum_kiosk-*.whl)
        shopt -u nullglob
        if ((${#kiosk_wheels[@]} != 1)); then
            bad "--wheelhouse $wheelhouse: expected one smartum_kiosk wheel, found ${#kiosk_wheels[@]}"
        else
            wheel=${kiosk_wheels[0]}
        fi
        while IFS= read -r name; do
            [[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || bad "--wheelhouse $wheelhouse: unexpected file name $name"
        done < <(find "$wheelhouse" -mindepth 1 -maxdepth 1 -printf '%f\n')
    fi
fi
for t in "${targets[@]}"; do
    [[ $t =~ ^(aarch64|x86_64)-cp3[0-9]{2}$ ]] || bad "--target $t: expected ARCH-cpXY, e.g. x86_64-cp313"
done

if [[ -n $device ]]; then
    if [[ ! -b $device ]]; then
        bad "--device $device: not a block device (for an image file use --out)"
    else
        dev=$(readlink -f "$device")
        root_src=$(findmnt -no SOURCE / 2>/dev/null || true)
        in_use=$(lsblk -nrpo NAME,MOUNTPOINT "$dev" 2>/dev/null | awk '$2 != "" { print $1 " on " $2 }')
        holds_root=0
        if [[ -n $root_src ]] && lsblk -nrpo NAME "$dev" 2>/dev/null | grep -qxF "$(readlink -f "$root_src")"; then
            holds_root=1
        fi
        while read -r src mnt _; do
            if [[ $src == "$dev" || $src =~ ^${dev}p?[0-9]+$ ]]; then
                in_use+=${in_use:+$'\n'}"$src on $mnt"
                [[ $mnt == / ]] && holds_root=1
            fi
        done </proc/mounts
        if ((holds_root)); then
            bad "--device $device: holds the running system's root filesystem; refusing"
        elif [[ -n $in_use ]]; then
            bad "--device $device: is mounted ($(sort -u <<<"$in_use" | paste -sd, -)); unmount it first"
        elif ((!dry_run)) && [[ ! -w $dev ]]; then
            bad "--device $device: not writable; run flash.sh with sudo"
        fi
    fi
fi

fleet_validate

if ((${#problems[@]})); then
    for p in "${problems[@]}"; do
        say "$p"
    done
    exit 2
fi

for tool in mcopy mtype mmd sfdisk; do
    command -v "$tool" >/dev/null || die "$tool is missing: sudo apt-get install mtools fdisk"
done
[[ $image != *.xz ]] || command -v xz >/dev/null || die "xz is missing: sudo apt-get install xz-utils"

# --- the wheel ---------------------------------------------------------------------

if [[ -z $wheel ]]; then
    wheel=$(find "$PROJECT/dist" -maxdepth 1 -name 'smartum_kiosk-*.whl' -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -n 1 | cut -d' ' -f2- || true)
    if [[ -z $wheel ]]; then
        if ((dry_run)); then
            wheel="$PROJECT/dist/smartum_kiosk-VERSION-py3-none-any.whl"
            say "would build the wheel: python3 -m pip wheel --no-deps $PROJECT -w $PROJECT/dist"
        else
            say "building the wheel from $PROJECT"
            python3 -m pip wheel --no-deps --quiet "$PROJECT" -w "$PROJECT/dist" >&2 ||
                die "building the wheel failed; build it yourself and pass --wheel FILE"
            wheel=$(find "$PROJECT/dist" -maxdepth 1 -name 'smartum_kiosk-*.whl' | sort | tail -n 1)
        fi
    fi
fi

# --- the wheelhouse (kiosk wheel + dependencies, locked with hashes) ------------------

make_wheelhouse() { # DIR
    local args=(--wheel "$wheel" --out "$1") t
    if [[ -n $wheelhouse ]]; then
        cp -p "$wheelhouse"/* "$1/"
        return
    fi
    for t in aarch64-cp311 aarch64-cp313 "${targets[@]}"; do
        args+=(--target "$t")
    done
    bash "$HERE/wheelhouse.sh" "${args[@]}" || die "making the wheelhouse failed (see above)"
}

# --- generated files -----------------------------------------------------------------

yaml_single() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }
yaml_double() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

write_user_data() {
    {
        printf '#cloud-config\n'
        printf '# SmartumPay counter kiosk, prepared by scripts/flash.sh\n'
        printf 'hostname: %s\n' "$hostname"
        printf 'manage_etc_hosts: true\n'
        printf 'users:\n'
        printf '  - name: %s\n' "$TECH_USER"
        printf '    gecos: Kiosk technician\n'
        printf '    groups: [adm, sudo, systemd-journal]\n'
        printf '    shell: /bin/bash\n'
        printf '    lock_passwd: true\n'
        printf "    sudo: 'ALL=(ALL) NOPASSWD:ALL'\n"
        printf '    ssh_authorized_keys:\n'
        printf '      - %s\n' "$(yaml_single "$ssh_key_line")"
        printf 'ssh_pwauth: false\n'
        printf 'disable_root: true\n'
        # No `packages:`: firstboot.sh asks apt only for what the image lacks, and an
        # unreachable mirror must not end cloud-init in error.
        # runcmd is one shell script whose status is its last command's: each step that
        # fails notes itself in FIRSTBOOT_FAILED, and the last step (runcmd_finish) ends
        # cloud-init in error if any did, so `cloud-init status` tells the technician.
        printf 'runcmd:\n'
        printf '  - [systemctl, enable, --now, ssh]\n'
        printf '%s\n' "$(runcmd_script firstboot.sh)"
        printf '  # firstboot.sh deletes it already; this also covers a firstboot.sh that never ran\n'
        printf '  - [rm, -f, /boot/firmware/kiosk/client_secret, /boot/firmware/network-config]\n'
        # $UPTIME is expanded by cloud-init, not here.
        # shellcheck disable=SC2016
        printf 'final_message: "%s"\n' \
            'cloud-init finished after $UPTIME s; the kiosk first boot is logged in /var/log/cloud-init-output.log'
    } >"$STAGE/user-data"
}

FIRSTBOOT_FAILED=/run/kiosk-firstboot.failed

# runcmd_script NAME: the runcmd step running /boot/firmware/kiosk/NAME, noting a failure.
runcmd_script() {
    printf "  - [sh, -c, 'bash /boot/firmware/kiosk/%s || echo \"%s failed (exit \$?): see above in this log\" >>%s']" \
        "$1" "$1" "$FIRSTBOOT_FAILED"
}

# runcmd_append FILE STEPS: adds STEPS (YAML lines) at the end of user-data's runcmd.
runcmd_append() {
    awk -v steps="$2" '
        function add() { if (in_runcmd) { printf "%s", steps; in_runcmd = 0; added = 1 } }
        in_runcmd && /^[^ \t#-]/ { add() }
        { print }
        /^runcmd:[ \t]*$/ { in_runcmd = 1 }
        END { add(); if (!added) printf "runcmd:\n%s", steps }
    ' "$1" >"$1.runcmd"
    mv "$1.runcmd" "$1"
}

# runcmd_finish FILE: the last runcmd step: cloud-init ends in error when a step failed.
runcmd_finish() {
    local step
    step=$'  # the first boot is not complete when a step above failed: cloud-init status says so\n'
    step+="  - [sh, -c, 'if [ -e $FIRSTBOOT_FAILED ]; then cat $FIRSTBOOT_FAILED >&2; exit 1; fi']"
    runcmd_append "$1" "$step"$'\n'
}

write_meta_data() {
    printf 'instance-id: kiosk-%s-%s\nlocal-hostname: %s\n' \
        "$hostname" "$(date -u +%Y%m%dT%H%M%SZ)" "$hostname" >"$STAGE/meta-data"
}

write_network_config() {
    {
        printf 'network:\n'
        printf '  version: 2\n'
        printf '  ethernets:\n'
        printf '    eth0:\n'
        printf '      dhcp4: true\n'
        printf '      optional: true\n'
        printf '  wifis:\n'
        printf '    wlan0:\n'
        printf '      dhcp4: true\n'
        printf '      optional: true\n'
        printf '      regulatory-domain: %s\n' "$wifi_country"
        printf '      access-points:\n'
        printf '        %s:\n' "$(yaml_double "$wifi_ssid")"
        printf '          password: %s\n' "$(yaml_double "$wifi_psk")"
    } >"$STAGE/network-config"
    chmod 600 "$STAGE/network-config"
}

write_user_data
fleet_user_data "$STAGE/user-data"
runcmd_finish "$STAGE/user-data"
write_meta_data
[[ -z $wifi_ssid ]] || write_network_config

target=${out:-$device}
if ((dry_run)); then
    if [[ -n $out ]]; then
        if [[ $image == *.xz ]]; then
            say "would decompress $image to $out"
        else
            say "would copy $image to $out"
        fi
    else
        say "would write $image to $device (everything on it is lost)"
    fi
    say "would append $PROJECT/config/config.txt to config.txt (I2C, camera)"
    [[ -z $wifi_ssid ]] || say "would write network-config for Wi-Fi '$wifi_ssid' ($wifi_country) and set the country in cmdline.txt"
    if [[ -n $wheelhouse ]]; then
        say "would copy the wheelhouse $wheelhouse ($(basename "$wheel"))"
    else
        say "would make the wheelhouse for $(basename "$wheel"): aarch64-cp311 aarch64-cp313 ${targets[*]}"
    fi
    say "would write user-data, meta-data, ssh and kiosk/ (wheels/${config:+, kiosk.toml}${secret_file:+, client_secret}) to the boot partition"
    fleet_dry_run
    say "user-data:"
    cat "$STAGE/user-data" >&2
    say "dry run: nothing written"
    exit 0
fi

# --- writing -----------------------------------------------------------------------

# The wheelhouse first: it may need the network, and nothing is written if it fails.
mkdir -p "$STAGE/kiosk/wheels"
make_wheelhouse "$STAGE/kiosk/wheels"

if [[ -n $device ]]; then
    if ((!yes)); then
        size=$(lsblk -dno SIZE,MODEL "$device" 2>/dev/null | xargs || true)
        printf '%s: write %s to %s (%s)? Everything on it is lost. Type yes: ' \
            "$PROG" "$(basename "$image")" "$device" "${size:-unknown}" >&2
        answer=""
        read -r answer </dev/tty || true
        [[ $answer == yes ]] || die "not confirmed; nothing written"
    fi
    say "writing $image to $device"
    if [[ $image == *.xz ]]; then
        xz -dc "$image" | dd of="$device" bs=4M conv=fsync status=none
    else
        dd if="$image" of="$device" bs=4M conv=fsync status=none
    fi
else
    partial="$out.partial"
    trap 'rm -rf "$STAGE" "$partial"' EXIT
    say "copying $image to $out"
    if [[ $image == *.xz ]]; then
        xz -dc "$image" >"$partial"
    else
        cp --sparse=always "$image" "$partial"
    fi
    target=$partial
fi

# Byte offset of the FAT boot partition (the first partition of a Raspberry Pi OS image).
dump=$(sfdisk --dump "$target" 2>/dev/null) || die "$target has no readable partition table; is --image a Raspberry Pi OS image?"
sector=$(sed -n 's/^sector-size: *//p' <<<"$dump")
line=$(grep -m 1 'start=' <<<"$dump") || die "$target has no partitions"
start=$(sed -E 's/.*start= *([0-9]+).*/\1/' <<<"$line")
ptype=$(sed -E 's/.*type= *([^,]+).*/\1/' <<<"$line")
ptype=${ptype,,}
case $ptype in
    b | c | e | 6 | ef | ebd0a0a2-b9e5-4433-87c0-68b6b72699c7 | c12a7328-f81f-11d2-ba4b-00a0c93ec93b) ;;
    *) die "first partition of $target is type $ptype, not FAT: not a Raspberry Pi OS image" ;;
esac
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0
fat="$target@@$((start * ${sector:-512}))"

mtype -i "$fat" ::config.txt >"$STAGE/config.txt" 2>/dev/null ||
    die "no config.txt in the boot partition of $target: not a Raspberry Pi OS image"

# config.txt: drop an earlier kiosk block, append the current one.
sed -i '/^# >>> kiosk/,/^# <<< kiosk/d' "$STAGE/config.txt"
{
    printf '# >>> kiosk (scripts/flash.sh)\n'
    cat "$PROJECT/config/config.txt"
    printf '# <<< kiosk\n'
} >>"$STAGE/config.txt"

if [[ -n $wifi_ssid ]]; then
    mtype -i "$fat" ::cmdline.txt >"$STAGE/cmdline.txt" 2>/dev/null ||
        die "no cmdline.txt in the boot partition of $target"
    tr -d '\r\n' <"$STAGE/cmdline.txt" | sed -E 's/ ?cfg80211\.ieee80211_regdom=[A-Za-z]*//' >"$STAGE/cmdline.new"
    printf ' cfg80211.ieee80211_regdom=%s\n' "$wifi_country" >>"$STAGE/cmdline.new"
    mv "$STAGE/cmdline.new" "$STAGE/cmdline.txt"
fi

cp "$PROJECT/systemd/kiosk.service" "$PROJECT/systemd/kiosk.sysusers" "$STAGE/kiosk/"
cp "$HERE/firstboot.sh" "$HERE/update-remote.sh" "$HERE/kiosk-packages.sh" "$STAGE/kiosk/"
[[ -z $config ]] || cp "$config" "$STAGE/kiosk/kiosk.toml"
[[ -z $secret_file ]] || install -m 0600 "$secret_file" "$STAGE/kiosk/client_secret"
[[ -z $ca_bundle ]] || cp "$ca_bundle" "$STAGE/kiosk/ca_bundle.pem"
: >"$STAGE/ssh"
fleet_stage "$STAGE/kiosk" "$target"

say "writing the boot partition"
for name in user-data meta-data network-config config.txt cmdline.txt ssh; do
    [[ ! -f $STAGE/$name ]] || mcopy -o -i "$fat" "$STAGE/$name" "::$name"
done
mdeltree -i "$fat" ::kiosk >/dev/null 2>&1 || true
mcopy -s -o -i "$fat" "$STAGE/kiosk" ::

if [[ -n $out ]]; then
    mv -f "$partial" "$out"
    say "done: $out (write it to a card with: sudo dd if=$out of=/dev/sdX bs=4M conv=fsync)"
else
    sync
    say "done: $device can be removed and put into the Pi"
fi
