# shellcheck shell=bash
# First-boot provisioning of the system, sourced by scripts/firstboot.sh (uses its log,
# ROOT and SRC). flash.sh puts it beside firstboot.sh in the boot partition's kiosk/.
#
#   system_sudo            the technician's sudo: installs kiosk/010_tech-nopasswd as
#                          /etc/sudoers.d/010_tech-nopasswd (root, 0440) once `visudo -cf`
#                          accepts it, then checks that `sudo -n true` works for tech
#   wait_for_route         waits, at most KIOSK_ROUTE_WAIT seconds (default 90), for a
#                          default route: apt starts only once the Wi-Fi or Ethernet is up
#   apt_get ARGS...        apt-get that waits for the dpkg lock (DPkg::Lock::Timeout) and,
#                          until the clock is synchronised, accepts Release files "not yet
#                          valid" (Acquire::Check-Date=false: the clock of a Pi without a
#                          real-time clock starts at the image's date)

TECH_USER=tech
SUDOERS_NAME=010_$TECH_USER-nopasswd

system_sudo() {
    local src=$SRC/$SUDOERS_NAME dir=$ROOT/etc/sudoers.d tmp
    if [[ ! -f $src ]]; then
        log "ERROR: $src is missing: prepare the card with scripts/flash.sh"
        return 1
    fi
    install -d -m 0755 "$dir" || return 1
    # sudo reads no file whose name holds a dot: the copy is checked before it counts.
    tmp=$(mktemp "$dir/.$SUDOERS_NAME.XXXXXX") || return 1
    if ! install -m 0440 -o 0 -g 0 "$src" "$tmp" || ! visudo -cf "$tmp" >/dev/null; then
        rm -f "$tmp"
        log "ERROR: visudo rejects $src; nothing installed (flash the card again)"
        return 1
    fi
    mv -f "$tmp" "$dir/$SUDOERS_NAME" || return 1
    sync "$dir/$SUDOERS_NAME"
    log "sudo rule for $TECH_USER placed at /etc/sudoers.d/$SUDOERS_NAME (0440, checked by visudo)"
    if ! runuser -u "$TECH_USER" -- sudo -n true; then
        log "ERROR: sudo -n true fails for $TECH_USER: update.sh and the Ansible playbooks need it"
        return 1
    fi
    log "sudo -n true works for $TECH_USER"
}

_has_route() {
    [[ -n $(ip -4 route show default 2>/dev/null) || -n $(ip -6 route show default 2>/dev/null) ]]
}

wait_for_route() {
    local limit=${KIOSK_ROUTE_WAIT:-90} start=$SECONDS
    until _has_route; do
        if ((SECONDS - start >= limit)); then
            log "no network route after ${limit} s (Wi-Fi not up yet, or no network at all)"
            return 1
        fi
        sleep 2
    done
    log "network route up after $((SECONDS - start)) s"
}

_clock_synced() {
    [[ $(timedatectl show --property=NTPSynchronized --value 2>/dev/null) == yes ]]
}

apt_get() {
    local opts=(-o "DPkg::Lock::Timeout=${KIOSK_APT_LOCK_TIMEOUT:-300}"
        -o Acquire::Retries=2 -o Acquire::http::Timeout=20)
    _clock_synced || opts+=(-o Acquire::Check-Date=false)
    DEBIAN_FRONTEND=noninteractive apt-get -q "${opts[@]}" "$@"
}
