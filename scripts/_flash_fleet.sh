# shellcheck shell=bash
# Fleet options of scripts/flash.sh (sourced by it; uses its bad, say, die,
# check_secret_file, and _flash_debs.sh):
#
#   --metrics [--metrics-listen ADDR:PORT]
#       install (from the card: no network needed) and enable prometheus-node-exporter on
#       first boot, listening on ADDR:PORT
#       only (default: the Pi's LAN address - the one of the default route's interface -
#       on port 9100); the kiosk user may write its kiosk.prom into node_exporter's
#       textfile folder /var/lib/prometheus/node-exporter.
#   --log-server https://HOST[:PORT] --log-ca CA.pem [--log-cert CERT.pem --log-key KEY.pem]
#       install systemd-journal-remote (from the card) on first boot and enable systemd-journal-upload to
#       HOST (a systemd-journal-remote, HTTPS port 19532 by default), trusting CA.pem and,
#       with --log-cert/--log-key, authenticating with that client certificate.
#
# The boot partition's kiosk/ folder gets fleet-firstboot.sh, fleet.conf (the settings)
# and log/ (the certificates; deleted on first boot). user-data gets two runcmd steps at
# the end: fleet-firstboot.sh and, in any case, removing kiosk/log from the boot partition.

fleet_metrics=0 fleet_metrics_listen="" fleet_log_server="" fleet_log_ca=""
fleet_log_cert="" fleet_log_key=""

# fleet_option OPTION [VALUE]: one fleet option (flash.sh checked that VALUE is there).
fleet_option() {
    case $1 in
        --metrics) fleet_metrics=1 ;;
        --metrics-listen) fleet_metrics_listen=$2 ;;
        --log-server) fleet_log_server=$2 ;;
        --log-ca) fleet_log_ca=$2 ;;
        --log-cert) fleet_log_cert=$2 ;;
        --log-key) fleet_log_key=$2 ;;
    esac
}

fleet_enabled() { ((fleet_metrics)) || [[ -n $fleet_log_server ]]; }

_fleet_pem() { # OPTION FILE KIND: FILE holds a PEM block of KIND (CERTIFICATE, PRIVATE KEY)
    if [[ ! -f $2 ]]; then
        bad "$1 $2: no such file"
    elif ! grep -q -- "-----BEGIN .*$3-----" "$2"; then
        bad "$1 $2: not a PEM $3 file (expected '-----BEGIN ...$3-----')"
    elif [[ $3 == CERTIFICATE ]] && command -v openssl >/dev/null &&
        ! openssl x509 -noout -in "$2" 2>/dev/null; then
        bad "$1 $2: openssl cannot read this certificate"
    fi
}

_fleet_valid_listen() { # ADDR:PORT with an IPv4 address or [IPv6] and a port 1-65535
    local addr=${1%:*} port=${1##*:} octet
    [[ $1 == *:* && $port =~ ^[0-9]{1,5}$ ]] && ((port >= 1 && port <= 65535)) || return 1
    if [[ $addr =~ ^\[[0-9A-Fa-f:.]+\]$ ]]; then
        return 0
    fi
    [[ $addr =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
    for octet in ${addr//./ }; do
        ((10#$octet <= 255)) || return 1
    done
}

# fleet_validate: every problem of the fleet options, through bad().
fleet_validate() {
    if [[ -n $fleet_metrics_listen ]]; then
        if ((!fleet_metrics)); then
            bad "--metrics-listen needs --metrics"
        elif ! _fleet_valid_listen "$fleet_metrics_listen"; then
            bad "--metrics-listen $fleet_metrics_listen: expected ADDRESS:PORT with an IP address, e.g. 10.10.1.21:9100"
        fi
    fi
    if [[ -z $fleet_log_server ]]; then
        [[ -z $fleet_log_ca && -z $fleet_log_cert && -z $fleet_log_key ]] ||
            bad "--log-ca/--log-cert/--log-key need --log-server https://HOST[:PORT]"
        return 0
    fi
    if ! [[ $fleet_log_server =~ ^https://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$ ]]; then
        bad "--log-server $fleet_log_server: expected https://HOST[:PORT] (the chain's systemd-journal-remote, e.g. https://logs.example.net:19532)"
    fi
    if [[ -z $fleet_log_ca ]]; then
        bad "--log-ca is required with --log-server (the CA that signed the log server's certificate)"
    else
        _fleet_pem --log-ca "$fleet_log_ca" CERTIFICATE
    fi
    if [[ -n $fleet_log_cert || -n $fleet_log_key ]]; then
        if [[ -z $fleet_log_cert || -z $fleet_log_key ]]; then
            bad "give both --log-cert and --log-key (the client certificate and its key), or neither"
        else
            _fleet_pem --log-cert "$fleet_log_cert" CERTIFICATE
            _fleet_pem --log-key "$fleet_log_key" "PRIVATE KEY"
            [[ ! -f $fleet_log_key ]] || check_secret_file --log-key "$fleet_log_key"
            if [[ -f $fleet_log_cert && -f $fleet_log_key ]] && command -v openssl >/dev/null &&
                [[ $(openssl x509 -noout -pubkey -in "$fleet_log_cert" 2>/dev/null) != \
                    "$(openssl pkey -pubout -in "$fleet_log_key" 2>/dev/null)" ]]; then
                bad "--log-key $fleet_log_key: does not belong to --log-cert $fleet_log_cert"
            fi
        fi
    fi
}

# fleet_user_data FILE: adds the first-boot steps at the end of user-data's runcmd.
fleet_user_data() {
    fleet_enabled || return 0
    local steps
    steps=$'  # fleet: node_exporter and journal upload (scripts/fleet-firstboot.sh)\n'
    steps+="$(runcmd_script fleet-firstboot.sh)"$'\n'
    steps+=$'  # the log certificates go even if fleet-firstboot.sh never ran\n'
    steps+=$'  - [rm, -rf, /boot/firmware/kiosk/log]\n'
    runcmd_append "$1" "$steps"
}

# fleet_stage DIR CARD: the first-boot script, its settings, the certificates and the
# .deb files of the fleet packages, which stock Raspberry Pi OS Lite lacks, for CARD's
# architecture and release (_flash_debs.sh) into DIR (the kiosk/ folder of the boot
# partition).
fleet_stage() {
    fleet_enabled || return 0
    cp "$HERE/fleet-firstboot.sh" "$1/"
    ((!fleet_metrics)) || card_debs "$2" "$1/debs" prometheus-node-exporter
    [[ -z $fleet_log_server ]] || card_debs "$2" "$1/debs" systemd-journal-remote
    {
        printf '# written by scripts/flash.sh; read by fleet-firstboot.sh\n'
        printf 'metrics=%s\n' "$fleet_metrics"
        printf 'metrics_listen=%s\n' "$fleet_metrics_listen"
        printf 'log_server=%s\n' "$fleet_log_server"
    } >"$1/fleet.conf"
    if [[ -n $fleet_log_server ]]; then
        mkdir -m 0700 "$1/log"
        install -m 0600 "$fleet_log_ca" "$1/log/ca.crt"
        if [[ -n $fleet_log_cert ]]; then
            install -m 0600 "$fleet_log_cert" "$1/log/client.crt"
            install -m 0600 "$fleet_log_key" "$1/log/client.key"
        fi
    fi
}

# fleet_dry_run: what fleet_stage would add.
fleet_dry_run() {
    ((!fleet_metrics)) ||
        say "would set up prometheus-node-exporter on first boot, listening on ${fleet_metrics_listen:-the LAN address, port 9100}"
    [[ -z $fleet_log_server ]] ||
        say "would set up systemd-journal-upload to $fleet_log_server on first boot (CA${fleet_log_cert:+, client certificate})"
}
