# shellcheck shell=bash
# The one "run inside the right Python" helper every script goes through.
#
# Home Assistant 2026.10+ needs Python >= 3.14.2. We look for one in this order:
#   1. python3.14 / python3 on PATH that is new enough (laptops, devcontainers);
#   2. uv, which can install one where it has network access to its downloads;
#   3. as root on Debian/Ubuntu: a small Debian testing root file system whose system
#      Python is 3.14, entered through bubblewrap (see shared ENVIRONMENT.md).
# The choice is written to .venv/labpower-python so later runs take seconds.

set -euo pipefail

LABPOWER_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LABPOWER_VENV="$LABPOWER_REPO/.venv"
LABPOWER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}"
LABPOWER_ROOTFS="$LABPOWER_CACHE/labpower/rootfs-testing"
LABPOWER_MIN_PYTHON="3.14.2"
# Packages of the root file system: the interpreter, a compiler for wheels that build from
# source, and the local protocol peers the tests start (mosquitto, snmpd, ipmi_sim...), and
# the headless browser the rack card's end-to-end test drives (chromium).
LABPOWER_ROOTFS_PACKAGES="python3.14,python3.14-venv,python3.14-dev,gcc,g++,ca-certificates,iputils-ping,openssh-client,openipmi,ipmitool,snmpd,snmp,mosquitto,chromium"

lp_log() { printf '[labpower] %s\n' "$*" >&2; }

# Succeeds when the interpreter given is at least LABPOWER_MIN_PYTHON.
lp_python_ok() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= tuple(map(int, '$LABPOWER_MIN_PYTHON'.split('.'))) else 1)" \
        >/dev/null 2>&1
}

# Prints the Debian mirror the host itself uses (never a name written in this repository).
lp_debian_mirror() {
    local line uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        while read -r line; do
            case "$line" in
                URIs:*) uri="${line#URIs:}"; uri="${uri# }"; uri="${uri%% *}"
                        case "$uri" in *security*) uri="" ;; *) break 2 ;; esac ;;
            esac
        done <"$f"
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)"
    fi
    [ -n "$uri" ] || return 1
    printf '%s\n' "$uri"
}

lp_fail_no_python() {
    cat >&2 <<EOF
[labpower] No Python >= $LABPOWER_MIN_PYTHON was found, and none can be made here. Home Assistant
2026.10 and later need it. Install Python $LABPOWER_MIN_PYTHON or newer so that "python3.14" is on
PATH (for example from your distribution, pyenv, or "uv python install 3.14"), or run this script
as root on Debian/Ubuntu so it can build a small Debian testing root file system with Python 3.14
and enter it with bubblewrap. Nothing has been installed.
EOF
    exit 1
}

# Builds the Debian testing root file system (only as root, only on Debian/Ubuntu).
lp_build_rootfs() {
    local mirror wip="$LABPOWER_ROOTFS.wip"
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || lp_fail_no_python
    if ! command -v debootstrap >/dev/null 2>&1 || ! command -v bwrap >/dev/null 2>&1; then
        lp_log "installing debootstrap and bubblewrap"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap bubblewrap >/dev/null
    fi
    mirror="$(lp_debian_mirror)" || { lp_log "cannot read a Debian mirror from the apt configuration"; exit 1; }
    lp_log "building a Debian testing root file system with Python 3.14 (about a minute)"
    rm -rf "$wip"
    mkdir -p "$(dirname "$LABPOWER_ROOTFS")"
    # bookworm's debootstrap has no script for the testing code name: use sid's explicitly.
    debootstrap --variant=minbase --include="$LABPOWER_ROOTFS_PACKAGES" \
        forky "$wip" "$mirror" /usr/share/debootstrap/scripts/sid >"$LABPOWER_CACHE/labpower/debootstrap.log" 2>&1 \
        || { lp_log "debootstrap failed, see $LABPOWER_CACHE/labpower/debootstrap.log"; exit 1; }
    printf '%s\n' "$LABPOWER_ROOTFS_PACKAGES" >"$wip/.labpower-packages"
    rm -rf "$LABPOWER_ROOTFS"
    mv "$wip" "$LABPOWER_ROOTFS"
}

# Makes sure a rootfs exists and has every package in LABPOWER_ROOTFS_PACKAGES.
lp_ensure_rootfs() {
    if [ ! -x "$LABPOWER_ROOTFS/usr/bin/python3.14" ]; then
        lp_build_rootfs
    elif [ "$(cat "$LABPOWER_ROOTFS/.labpower-packages" 2>/dev/null)" != "$LABPOWER_ROOTFS_PACKAGES" ]; then
        lp_log "adding packages to the root file system"
        lp_bwrap apt-get -o Acquire::Check-Valid-Until=false update -qq
        lp_bwrap env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
            install -y -qq ${LABPOWER_ROOTFS_PACKAGES//,/ } >/dev/null
        printf '%s\n' "$LABPOWER_ROOTFS_PACKAGES" >"$LABPOWER_ROOTFS/.labpower-packages"
    fi
    # The network may go through a TLS proxy: the rootfs trusts what the host trusts.
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cmp -s /etc/ssl/certs/ca-certificates.crt "$LABPOWER_ROOTFS/etc/ssl/certs/ca-certificates.crt" \
            || cp /etc/ssl/certs/ca-certificates.crt "$LABPOWER_ROOTFS/etc/ssl/certs/ca-certificates.crt"
    fi
}

# Runs a command inside the root file system, with the repository and caches at the same paths.
lp_bwrap() {
    mkdir -p "$LABPOWER_CACHE"
    local extra=() dir
    # Local wheel folders the host's pip configuration points at stay visible inside.
    for dir in ${PIP_FIND_LINKS:-}; do
        [ -d "$dir" ] && extra+=(--ro-bind "$dir" "$dir")
    done
    # /tmp first: the repository or the cache may live below it and must stay visible.
    bwrap --bind "$LABPOWER_ROOTFS" / \
        --proc /proc --dev /dev --tmpfs /tmp \
        --bind "$LABPOWER_REPO" "$LABPOWER_REPO" \
        --bind "$LABPOWER_CACHE" "$LABPOWER_CACHE" \
        --ro-bind /etc/resolv.conf /etc/resolv.conf --ro-bind /etc/hosts /etc/hosts \
        "${extra[@]}" --chdir "$PWD" \
        "$@"
}

# Decides how to reach a suitable interpreter; prints "host:PATH" or "bwrap:PATH".
lp_choose_python() {
    local candidate found
    for candidate in python3.14 python3; do
        found="$(command -v "$candidate" 2>/dev/null)" || continue
        if lp_python_ok "$found"; then printf 'host:%s\n' "$found"; return; fi
    done
    if command -v uv >/dev/null 2>&1; then
        if found="$(uv python find ">=$LABPOWER_MIN_PYTHON" 2>/dev/null)" \
            || { uv python install 3.14 >/dev/null 2>&1 && found="$(uv python find ">=$LABPOWER_MIN_PYTHON" 2>/dev/null)"; }; then
            if lp_python_ok "$found"; then printf 'host:%s\n' "$found"; return; fi
        fi
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        printf 'bwrap:/usr/bin/python3.14\n'
        return
    fi
    lp_fail_no_python
}

# Prints the recorded way to reach the venv's interpreter, if the venv exists.
lp_mode() { cat "$LABPOWER_VENV/labpower-python" 2>/dev/null || true; }

# Runs a command with the project's venv active, inside the rootfs when that is how we run.
lp_run() {
    local mode
    mode="$(lp_mode)"
    [ -n "$mode" ] || { lp_log "no virtual environment yet: run scripts/setup"; exit 1; }
    local path="$LABPOWER_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    case "$mode" in
        host:*) PATH="$LABPOWER_VENV/bin:$PATH" VIRTUAL_ENV="$LABPOWER_VENV" "$@" ;;
        bwrap:*) lp_ensure_rootfs; lp_bwrap env PATH="$path" VIRTUAL_ENV="$LABPOWER_VENV" "$@" ;;
    esac
}
