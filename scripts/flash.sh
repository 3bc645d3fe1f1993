#!/bin/bash
# Prepare a Raspberry Pi OS image file or SD card as a SmartumPay counter kiosk.
#
#   flash.sh --image raspios.img[.xz] (--out kiosk.img | --device /dev/sdX)
#            --hostname NAME --ssh-key KEY.pub
#            [--wifi-ssid SSID --wifi-psk-file FILE --wifi-country FI]
#            [--config kiosk.toml] [--client-secret-file FILE] [--ca-bundle FILE]
#            [--wheel FILE [--target ARCH-cpXY ...] | --wheelhouse DIR]
#            [--uart-scanner] [--yes] [--dry-run]
#            [--metrics [--metrics-listen ADDR:PORT]]
#            [--log-server https://HOST[:PORT] --log-ca FILE [--log-cert FILE --log-key FILE]]
#
# The image is first read (its boot partition, with mtools): flash.sh refuses, one line
# each, an image with no config.txt, a 32-bit image and one without the stock cloud-init
# seed (bookworm, trixie before 2025-11-24). It works with Raspberry Pi OS trixie,
# 64-bit, Lite or with desktop, 2025-11-24 or later.
# The image is copied (or decompressed) to --out, or written to --device. Then the
# FAT boot partition gets, through mtools (no mounting; no root for image files):
#   user-data       cloud-init: technician user `tech` (`user:`, the image's first
#                   account renamed) with the SSH key only (password login off),
#                   hostname, first-boot install (no apt package list); with Wi-Fi,
#                   bootcmd unblocks the radio
#   meta-data       dsmode: local, instance-id, local-hostname
#   network-config  Wi-Fi (the key derived from the passphrase, as wpa_passphrase) and
#                   wired Ethernet (netplan v2) with --wifi-ssid; comments only without
#   config.txt      I2C and camera enabled (config/config.txt appended); with
#                   --uart-scanner the UART on GPIO14/15 (enable_uart=1, disable-bt on
#                   Pi 3/4/Zero 2 W, uart0 on Pi 5)
#   cmdline.txt     Wi-Fi country (cfg80211.ieee80211_regdom), ds=nocloud;i=<instance-id>;
#                   with --uart-scanner no serial console
#   ssh             enables the SSH server
#   kiosk/          wheels/ (the locked wheelhouse: the kiosk wheel, every dependency
#                   for the Pi and requirements.lock with their hashes), kiosk.toml,
#                   client_secret, ca_bundle.pem (--ca-bundle: the CA of a backend
#                   with a private CA; the config then says
#                   ca_bundle = "/etc/kiosk/ca_bundle.pem"), kiosk.service,
#                   kiosk.sysusers, 010_tech-nopasswd (the technician's sudoers rule,
#                   checked with visudo -cf when visudo is here), firstboot.sh,
#                   _firstboot_system.sh, update-remote.sh, kiosk-packages.sh
# Every string in user-data, meta-data and network-config is double-quoted, so that
# YAML 1.1 keeps it a string (a country NO, a hostname 0123).
# The wheelhouse is made by scripts/wheelhouse.sh (this needs PyPI, here, once; the
# kiosk's first boot then installs offline): for --wheel (default: the newest
# dist/smartum_kiosk-*.whl) and the Pi's targets aarch64-cp311 and aarch64-cp313
# (trixie), plus each --target. --wheelhouse DIR takes one made before, so that every
# kiosk of a chain gets the same bits.
# On first boot scripts/firstboot.sh installs the kiosk and the sudoers rule and
# deletes kiosk/client_secret, kiosk/kiosk.toml and network-config (the Wi-Fi key).
# --uart-scanner needs, with --config, [scanner] source "serial" and port "/dev/serial0".
# Fleet options (Prometheus node_exporter, journal upload; scripts/_flash_fleet.sh):
# kiosk/ also gets fleet-firstboot.sh, fleet.conf and log/ (certificates), and
# user-data runs fleet-firstboot.sh after firstboot.sh.
# Needs mtools, fdisk (sfdisk), xz for .img.xz, and python3 to derive the Wi-Fi key.
#
# Exit status: 0 done, 1 failed, 2 bad arguments (one message per problem).

set -euo pipefail

PROG=flash.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")
TECH_USER=tech

image="" out="" device="" hostname="" ssh_key="" wifi_ssid="" wifi_psk_file=""
wifi_country="" config="" secret_file="" ca_bundle="" wheel="" wheelhouse="" yes=0 dry_run=0
uart_scanner=0
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
        --uart-scanner) uart_scanner=1; shift ;;
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
            if ! [[ $wifi_psk =~ ^[0-9A-Fa-f]{64}$ ]] && ! command -v python3 >/dev/null; then
                bad "--wifi-psk-file: python3 is needed to derive the Wi-Fi key from the passphrase: sudo apt-get install python3"
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
        if ! msg=$(python3 - "$config" "$uart_scanner" 2>&1 <<'PY'
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
if sys.argv[2] == "1":
    scanner = data.get("scanner", {})
    source = scanner.get("source", "serial")
    sources = source if isinstance(source, list) else [source]
    if "serial" not in sources or scanner.get("port") != "/dev/serial0":
        sys.exit('--uart-scanner needs [scanner] source = "serial" (or a list with it) and'
                 f' port = "/dev/serial0" (the UART on GPIO14/15); is {source!r},'
                 f' {scanner.get("port")!r}')
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

for tool in mcopy mtype mdir sfdisk; do
    command -v "$tool" >/dev/null || die "$tool is missing: sudo apt-get install mtools fdisk"
done
[[ $image != *.xz ]] || command -v xz >/dev/null || die "xz is missing: sudo apt-get install xz-utils"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0

# boot_fat FILE [NAME]: the mtools image spec (FILE@@OFFSET) of the FAT boot partition,
# the first partition of a Raspberry Pi OS image; says why not (naming NAME, default
# FILE) and fails otherwise.
boot_fat() {
    local dump sector line start ptype name=${2:-$1}
    dump=$(sfdisk --dump "$1" 2>/dev/null) || {
        say "ERROR: $name has no readable partition table; is --image a Raspberry Pi OS image?"
        return 1
    }
    sector=$(sed -n 's/^sector-size: *//p' <<<"$dump")
    line=$(grep -m 1 'start=' <<<"$dump") || { say "ERROR: $name has no partitions"; return 1; }
    start=$(sed -E 's/.*start= *([0-9]+).*/\1/' <<<"$line")
    ptype=$(sed -E 's/.*type= *([^,]+).*/\1/' <<<"$line")
    ptype=${ptype,,}
    case $ptype in
        b | c | e | 6 | ef | ebd0a0a2-b9e5-4433-87c0-68b6b72699c7 | c12a7328-f81f-11d2-ba4b-00a0c93ec93b) ;;
        *) say "ERROR: first partition of $name is type $ptype, not FAT: not a Raspberry Pi OS image"; return 1 ;;
    esac
    printf '%s@@%s\n' "$1" "$((start * ${sector:-512}))"
}

# --- the image: refuse what cannot be provisioned, before anything is written ---------

# probe_file: the image itself, or (for .img.xz) its start up to the end of the boot
# partition, decompressed into $STAGE.
probe_file() {
    local probe=$STAGE/probe.img dump line start size sector
    if [[ $image != *.xz ]]; then
        printf '%s\n' "$image"
        return
    fi
    # xz stops early on a closed pipe: only the part read matters.
    { xz -dc "$image" 2>/dev/null || true; } | head -c 1048576 >"$probe"
    dump=$(sfdisk --dump "$probe" 2>/dev/null) || { printf '%s\n' "$probe"; return; }
    sector=$(sed -n 's/^sector-size: *//p' <<<"$dump")
    line=$(grep -m 1 'start=' <<<"$dump") || { printf '%s\n' "$probe"; return; }
    start=$(sed -E 's/.*start= *([0-9]+).*/\1/' <<<"$line")
    size=$(sed -E 's/.*size= *([0-9]+).*/\1/' <<<"$line")
    { xz -dc "$image" 2>/dev/null || true; } | head -c $(((start + size) * ${sector:-512})) >"$probe"
    printf '%s\n' "$probe"
}

GET_IMAGE="download Raspberry Pi OS Lite (64-bit), trixie, 2025-11-24 or later (or Raspberry Pi OS with desktop, 64-bit): https://www.raspberrypi.com/software/operating-systems/"

# check_image: one line per reason the image cannot become a kiosk, then exit 2.
check_image() {
    local fat names config refusals=()
    fat=$(boot_fat "$(probe_file)" "$image") || exit 1
    names=$(mdir -b -i "$fat" :: 2>/dev/null | sed 's|^::/||; s|/$||')
    names=${names,,}
    if ! config=$(mtype -i "$fat" ::config.txt 2>/dev/null); then
        refusals+=("--image $image: no config.txt on its boot partition: not a Raspberry Pi OS image; $GET_IMAGE")
    elif grep -Exq 'kernel\.img|kernel7\.img|kernel7l\.img' <<<"$names"; then
        # Only 32-bit (armhf) images carry the 32-bit kernels (kernel.img, kernel7*.img).
        refusals+=("--image $image: a 32-bit Raspberry Pi OS image (32-bit kernels on its boot partition); the kiosk's wheels are 64-bit (aarch64): $GET_IMAGE")
    elif grep -Eq '^[[:space:]]*arm_64bit=0' <<<"$config"; then
        refusals+=("--image $image: a 32-bit Raspberry Pi OS image (arm_64bit=0 in its config.txt); the kiosk's wheels are 64-bit (aarch64): $GET_IMAGE")
    fi
    if ! grep -qx 'meta-data' <<<"$names"; then
        refusals+=("--image $image: no cloud-init seed (meta-data) on its boot partition: Raspberry Pi OS bookworm, or trixie before 2025-11-24, cannot be set up by flash.sh; $GET_IMAGE")
    fi
    if ((${#refusals[@]})); then
        printf '%s: %s\n' "$PROG" "${refusals[@]}" >&2
        exit 2
    fi
    rm -f "$STAGE/probe.img"
}
check_image

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

# Every string scalar is written double-quoted (q), so that YAML 1.1 keeps it a string:
# a Wi-Fi country NO, a hostname 0123, an SSID "yes" or "null" would otherwise turn into
# a boolean, a number or nothing. Booleans and numbers are written bare on purpose.
# Control characters are refused by the checks above; q escapes the rest.
q() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

INSTANCE_ID="kiosk-$hostname-$(date -u +%Y%m%dT%H%M%SZ)"
SUDOERS_NAME="010_$TECH_USER-nopasswd"

write_user_data() {
    {
        printf '#cloud-config\n'
        printf '# SmartumPay counter kiosk, prepared by scripts/flash.sh\n'
        printf 'hostname: %s\n' "$(q "$hostname")"
        printf 'manage_etc_hosts: true\n'
        # One user, as Raspberry Pi Imager writes it: `user:` is the image's default user,
        # so Raspberry Pi OS renames its UID-1000 account to it (userconf) instead of
        # adding a second one. sudo comes from the drop-in firstboot.sh installs (the
        # `sudo:` key is not applied reliably there); this one is kept for other images.
        printf 'user:\n'
        printf '  name: %s\n' "$(q "$TECH_USER")"
        printf '  gecos: "Kiosk technician"\n'
        printf '  groups: ["adm", "sudo", "systemd-journal"]\n'
        printf '  shell: "/bin/bash"\n'
        printf '  lock_passwd: true\n'
        printf '  sudo: "ALL=(ALL) NOPASSWD:ALL"\n'
        printf '  ssh_authorized_keys:\n'
        printf '    - %s\n' "$(q "$ssh_key_line")"
        printf 'ssh_pwauth: false\n'
        printf 'disable_root: true\n'
        if [[ -n $wifi_ssid ]]; then
            # Before the network comes up: the Wi-Fi radio may be blocked (rfkill, kept by
            # systemd-rfkill) or off in NetworkManager until a country is set.
            printf 'bootcmd:\n'
            # shellcheck disable=SC2016 # $f is the shell's on the Pi
            printf '  - ["sh", "-c", "rfkill unblock wlan || true; for f in /var/lib/systemd/rfkill/*:wlan; do [ -e \\"$f\\" ] && echo 0 >\\"$f\\"; done; nmcli radio wifi on 2>/dev/null || true"]\n'
        fi
        # No `packages:`: firstboot.sh asks apt only for what the image lacks, and an
        # unreachable mirror must not end cloud-init in error.
        # runcmd is one shell script whose status is its last command's: each step that
        # fails notes itself in FIRSTBOOT_FAILED, and the last step (runcmd_finish) ends
        # cloud-init in error if any did, so `cloud-init status` tells the technician.
        printf 'runcmd:\n'
        printf '  - ["systemctl", "enable", "--now", "ssh"]\n'
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
    {
        printf '# SmartumPay counter kiosk, prepared by scripts/flash.sh\n'
        # As the stock seed: user-data is applied before the network is brought up.
        printf 'dsmode: local\n'
        printf 'instance-id: %s\n' "$(q "$INSTANCE_ID")"
        printf 'local-hostname: %s\n' "$(q "$hostname")"
    } >"$STAGE/meta-data"
}

# wifi_key: the WPA key cloud-init gets: the 256-bit PSK derived from the passphrase as
# wpa_passphrase does (PBKDF2-HMAC-SHA1, the SSID as salt, 4096 rounds, 32 bytes, in
# hex), so the passphrase itself is never on the card; 64 hex digits are a PSK already.
wifi_key() {
    if [[ $wifi_psk =~ ^[0-9A-Fa-f]{64}$ ]]; then
        printf '%s\n' "${wifi_psk,,}"
        return
    fi
    # The passphrase goes through stdin, never the command line.
    printf '%s' "$wifi_psk" | python3 -c '
import hashlib, os, sys
ssid = os.fsencode(sys.argv[1])  # the bytes given, whatever the locale
print(hashlib.pbkdf2_hmac("sha1", sys.stdin.buffer.read(), ssid, 4096, 32).hex())
' "$wifi_ssid"
}

write_network_config() {
    if [[ -z $wifi_ssid ]]; then
        # Replaces the stock file (or an earlier card's Wi-Fi): comments only, so
        # NetworkManager's default (Ethernet by DHCP) applies.
        printf '# SmartumPay counter kiosk, prepared by scripts/flash.sh: no network configured\n# here; Ethernet comes up by DHCP (NetworkManager'"'"'s default).\n' \
            >"$STAGE/network-config"
        return
    fi
    local key
    key=$(wifi_key) || key=""
    [[ $key =~ ^[0-9a-f]{64}$ ]] || die "deriving the Wi-Fi key (python3 hashlib) failed"
    {
        printf '# SmartumPay counter kiosk, prepared by scripts/flash.sh. The Wi-Fi key is the\n'
        printf '# PSK derived from the passphrase (as wpa_passphrase); first boot deletes this file.\n'
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
        printf '      regulatory-domain: %s\n' "$(q "$wifi_country")"
        printf '      access-points:\n'
        printf '        %s:\n' "$(q "$wifi_ssid")"
        printf '          password: %s\n' "$(q "$key")"
    } >"$STAGE/network-config"
    chmod 600 "$STAGE/network-config"
}

# write_sudoers: the technician's sudo rule, installed by firstboot.sh as
# /etc/sudoers.d/010_tech-nopasswd (0440); checked here when visudo is at hand.
write_sudoers() {
    mkdir -p "$STAGE/kiosk"
    printf '# SmartumPay kiosk technician (scripts/flash.sh): update.sh and Ansible need it\n%s ALL=(ALL) NOPASSWD:ALL\n' \
        "$TECH_USER" >"$STAGE/kiosk/$SUDOERS_NAME"
    chmod 0440 "$STAGE/kiosk/$SUDOERS_NAME"
    local visudo
    visudo=$(PATH=$PATH:/usr/sbin:/sbin command -v visudo || true)
    if [[ -n $visudo ]]; then
        "$visudo" -cf "$STAGE/kiosk/$SUDOERS_NAME" >/dev/null ||
            die "visudo rejects the sudoers rule for $TECH_USER (kiosk/$SUDOERS_NAME)"
    fi
}

# edit_cmdline FILE: the kernel command line (one line): the Wi-Fi country, the NoCloud
# datasource with this card's instance-id (as Raspberry Pi Imager: cloud-init checks
# its cache against it at every boot), and with --uart-scanner no serial console.
# Earlier values of these are replaced.
edit_cmdline() {
    local words=() kept=() w
    read -r -a words < <(tr '\r\n' '  ' <"$1") || true
    for w in "${words[@]}"; do
        case $w in
            ds=nocloud* | cfg80211.ieee80211_regdom=*) continue ;;
            console=serial0* | console=ttyAMA0* | console=ttyS0* | console=ttyAMA10*)
                ((!uart_scanner)) || continue
                ;;
        esac
        kept+=("$w")
    done
    [[ -z $wifi_country ]] || kept+=("cfg80211.ieee80211_regdom=$wifi_country")
    kept+=("ds=nocloud;i=$INSTANCE_ID")
    printf '%s\n' "${kept[*]}" >"$1"
}

write_user_data
fleet_user_data "$STAGE/user-data"
runcmd_finish "$STAGE/user-data"
write_meta_data
write_network_config
write_sudoers

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
    [[ -z $wifi_ssid ]] || say "would write network-config for Wi-Fi '$wifi_ssid' ($wifi_country, the key derived from the passphrase) and set the country in cmdline.txt"
    ((!uart_scanner)) || say "would enable the UART on GPIO14/15 for the scanner (config.txt) and take the serial console off cmdline.txt"
    if [[ -n $wheelhouse ]]; then
        say "would copy the wheelhouse $wheelhouse ($(basename "$wheel"))"
    else
        say "would make the wheelhouse for $(basename "$wheel"): aarch64-cp311 aarch64-cp313 ${targets[*]}"
    fi
    say "would write user-data, meta-data, network-config, ssh and kiosk/ (wheels/, $SUDOERS_NAME${config:+, kiosk.toml}${secret_file:+, client_secret}) to the boot partition"
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

fat=$(boot_fat "$target") || exit 1

mtype -i "$fat" ::config.txt >"$STAGE/config.txt" 2>/dev/null ||
    die "no config.txt in the boot partition of $target: not a Raspberry Pi OS image"

# config.txt: drop an earlier kiosk block, append the current one.
sed -i '/^# >>> kiosk/,/^# <<< kiosk/d' "$STAGE/config.txt"
{
    printf '# >>> kiosk (scripts/flash.sh)\n'
    cat "$PROJECT/config/config.txt"
    if ((uart_scanner)); then
        # The scanner on GPIO14 (TXD) / GPIO15 (RXD) as /dev/serial0. Pi 3, 4 and Zero 2 W
        # give the full UART (PL011) to Bluetooth and leave the mini UART, off by default,
        # on these pins: Bluetooth goes, the PL011 comes back. On Pi 5 they are uart0.
        printf '# UART scanner on GPIO14/15 (flash.sh --uart-scanner)\n'
        printf '[all]\nenable_uart=1\n'
        printf '[pi3]\ndtoverlay=disable-bt\n[pi4]\ndtoverlay=disable-bt\n[pi02]\ndtoverlay=disable-bt\n'
        printf '[pi5]\ndtparam=uart0=on\n[all]\n'
    fi
    printf '# <<< kiosk\n'
} >>"$STAGE/config.txt"

mtype -i "$fat" ::cmdline.txt >"$STAGE/cmdline.txt" 2>/dev/null ||
    die "no cmdline.txt in the boot partition of $target"
edit_cmdline "$STAGE/cmdline.txt"

cp "$PROJECT/systemd/kiosk.service" "$PROJECT/systemd/kiosk.sysusers" "$STAGE/kiosk/"
cp "$HERE/firstboot.sh" "$HERE/_firstboot_system.sh" "$HERE/update-remote.sh" \
    "$HERE/kiosk-packages.sh" "$STAGE/kiosk/"
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
