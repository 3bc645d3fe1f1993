# shellcheck shell=bash
# First-boot provisioning of the system, sourced by scripts/firstboot.sh (uses its log,
# ROOT and SRC). flash.sh puts it beside firstboot.sh in the boot partition's kiosk/.
#
#   system_sudo            the technician's sudo: installs kiosk/010_tech-nopasswd as
#                          /etc/sudoers.d/010_tech-nopasswd (root, 0440) once `visudo -cf`
#                          accepts it, then checks that `sudo -n true` works for tech

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
