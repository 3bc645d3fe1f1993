# shellcheck shell=bash
# Debian packages a card option needs beyond stock Raspberry Pi OS Lite, fetched by
# flash.sh for the image's architecture and release and carried on the card, so the
# first boot installs them without any network (sourced by flash.sh; uses say, die).
#
#   card_debs CARD DIR PACKAGE
#       DIR/PACKAGE/ gets (unless the image has PACKAGE already) the .deb files of
#       PACKAGE and of every dependency the card's
#       root file system (its second partition, read with debugfs: dpkg's status,
#       architecture and /usr/lib/os-release) lacks, and SHA256SUMS. apt downloads them
#       from Debian's archive: it checks the Release file's signature against the
#       Debian archive keyring and each .deb's SHA-256 against the signed index. The
#       first boot checks SHA256SUMS again and installs with
#       `apt-get install ./PACKAGE/*.deb` (scripts/fleet-firstboot.sh).
#
# KIOSK_CARD_DEBS=DIR takes DIR/PACKAGE/ instead (fetched before by this function, e.g.
# to flash cards where there is no network): its SHA256SUMS must match its .deb files.
# DEBIAN_MIRROR (default http://deb.debian.org/debian) and DEBIAN_KEYRING (default
# /usr/share/keyrings/debian-archive-keyring.gpg) can be set. Needs apt, debugfs
# (e2fsprogs), sfdisk.

_card_root_read() { # CARD PATH: a file of the card's root file system on stdout
    local dump sector line start
    dump=$(sfdisk --dump "$1" 2>/dev/null) || return 1
    sector=$(sed -n 's/^sector-size: *//p' <<<"$dump")
    line=$(grep 'start=' <<<"$dump" | sed -n 2p) || return 1
    [[ -n $line ]] || return 1
    start=$(sed -E 's/.*start= *([0-9]+).*/\1/' <<<"$line")
    debugfs -R "cat $2" "$1?offset=$((start * ${sector:-512}))" 2>/dev/null
}

card_debs() { # CARD DIR PACKAGE
    local card=$1 out=$2/$3 pkg=$3 work arch suite
    if [[ -n ${KIOSK_CARD_DEBS:-} ]]; then
        local from=$KIOSK_CARD_DEBS/$pkg
        (cd "$from" 2>/dev/null && ls ./*.deb >/dev/null 2>&1 && sha256sum --quiet -c SHA256SUMS) ||
            die "KIOSK_CARD_DEBS: $from has no .deb files matching its SHA256SUMS"
        mkdir -p "$out"
        cp "$from"/*.deb "$from/SHA256SUMS" "$out/"
        say "  $pkg: .deb files from $from"
        return 0
    fi
    local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local keyring=${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
    if ! command -v debugfs >/dev/null || ! command -v apt-get >/dev/null; then
        die "fetching $pkg for the card needs apt and debugfs (a Debian or Ubuntu machine with e2fsprogs)"
    fi
    [[ -f $keyring ]] || die "$keyring is missing: apt-get install debian-archive-keyring"
    work=$(mktemp -d)
    mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc"
    if ! _card_root_read "$card" /var/lib/dpkg/status >"$work/status" || [[ ! -s $work/status ]]; then
        rm -rf "$work"
        die "cannot read dpkg's status from the root partition of $card"
    fi
    if awk -v pkg="$pkg" '$0 == "Package: " pkg { p = 1 } p && /^Status:/ { print; exit }' \
        "$work/status" | grep -q ' installed$'; then
        rm -rf "$work"
        say "  $pkg is already on the image: nothing to carry"
        return 0
    fi
    arch=$(awk '/^Package: dpkg$/ { p = 1 } p && /^Architecture:/ { print $2; exit }' "$work/status")
    suite=$(_card_root_read "$card" /usr/lib/os-release | sed -n 's/^VERSION_CODENAME=//p' | tr -d '"')
    [[ -n $arch && -n $suite ]] ||
        { rm -rf "$work"; die "cannot tell the architecture and release of $card"; }
    printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" >"$work/etc/sources.list"
    local apt=(apt-get -q -o "Dir::State::status=$work/status" -o "Dir::State::Lists=$work/lists"
        -o "Dir::Cache=$work" -o "Dir::Cache::archives=$work/archives"
        -o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=$work/none"
        -o "Dir::Etc::Preferences=$work/none" -o "Dir::Etc::PreferencesParts=$work/none"
        -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
        -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
    say "fetching $pkg for $suite/$arch (apt; signatures and hashes checked)"
    if ! "${apt[@]}" update >"$work/log" 2>&1 ||
        ! "${apt[@]}" install --download-only --no-install-recommends -y "$pkg" >>"$work/log" 2>&1; then
        sed 's/^/    /' "$work/log" >&2
        rm -rf "$work"
        die "fetching $pkg for the card failed (network? mirror $mirror?)"
    fi
    mkdir -p "$out"
    find "$work/archives" -maxdepth 1 -name '*.deb' -exec cp {} "$out/" \;
    rm -rf "$work"
    ls "$out"/*.deb >/dev/null 2>&1 || die "apt fetched no .deb for $pkg"
    (cd "$out" && sha256sum -- *.deb >SHA256SUMS)
    say "  $(find "$out" -name '*.deb' | wc -l) .deb files for $pkg on the card"
}
