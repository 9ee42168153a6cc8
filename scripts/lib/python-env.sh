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
# LABPOWER_ROOTFS_DIR moves the root file system elsewhere (CI builds it into an empty folder).
LABPOWER_ROOTFS="${LABPOWER_ROOTFS_DIR:-$LABPOWER_CACHE/labpower/rootfs-testing}"
LABPOWER_MIN_PYTHON="3.14.2"
# The root file system is made in two steps. debootstrap installs only a minimal base: the
# interpreter and what pip's builds need; it resolves neither virtual packages nor
# alternatives, so anything with a deep dependency tree fails there on some day of Debian
# testing. apt-get inside the base then installs the rest, where dependencies resolve: the
# local protocol peers the tests start (mosquitto, snmpd, ipmi_sim, NUT's upsd) and the
# headless browser of the end-to-end tests (chromium, with fonts to render text).
LABPOWER_ROOTFS_BASE="python3.14,python3.14-venv,python3.14-dev,gcc,g++,ca-certificates"
LABPOWER_ROOTFS_PACKAGES="iputils-ping openssh-client openipmi ipmitool snmpd snmp mosquitto nut-server chromium fonts-dejavu-core"
# Bumped when the recipe changes, so an older root file system is rebuilt rather than patched.
LABPOWER_ROOTFS_RECIPE="2"

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

# Runs "$@" up to three times (mirrors drop connections), logging to $LABPOWER_STEP_LOG. On the
# last failure prints the command and the end of its log, and fails.
lp_retry() {
    local attempt
    for attempt in 1 2 3; do
        if "$@" >>"$LABPOWER_STEP_LOG" 2>&1; then return 0; fi
        lp_log "attempt $attempt failed: $*"
        sleep $((attempt * 5))
    done
    lp_log "giving up on: $*"
    lp_log "last lines of $LABPOWER_STEP_LOG:"
    tail -n 25 "$LABPOWER_STEP_LOG" >&2
    return 1
}

# Builds the Debian testing root file system (only as root, only on Debian/Ubuntu) into a
# work folder and moves it in place only once complete: an interrupted or failed build never
# leaves a root file system that a later run takes for finished.
lp_build_rootfs() {
    local mirror wip="$LABPOWER_ROOTFS.wip" apt_opts
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || lp_fail_no_python
    mkdir -p "$(dirname "$LABPOWER_ROOTFS")"
    LABPOWER_STEP_LOG="$(dirname "$LABPOWER_ROOTFS")/rootfs-build.log"
    : >"$LABPOWER_STEP_LOG"
    if ! command -v debootstrap >/dev/null 2>&1 || ! command -v bwrap >/dev/null 2>&1; then
        lp_log "installing debootstrap and bubblewrap"
        lp_retry apt-get update -qq || exit 1
        lp_retry env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap bubblewrap || exit 1
    fi
    mirror="$(lp_debian_mirror)" || { lp_log "cannot read a Debian mirror from the apt configuration"; exit 1; }
    lp_log "building a Debian testing root file system with Python 3.14 (a few minutes; log: $LABPOWER_STEP_LOG)"
    rm -rf "$wip" "$LABPOWER_ROOTFS"
    # bookworm's debootstrap has no script for the testing code name: use sid's explicitly.
    # A failed attempt leaves a partial tree behind: start each attempt from an empty folder.
    lp_retry sh -c 'rm -rf "$1" && debootstrap --variant=minbase --include="$2" forky "$1" "$3" /usr/share/debootstrap/scripts/sid' \
        debootstrap "$wip" "$LABPOWER_ROOTFS_BASE" "$mirror" || { rm -rf "$wip"; exit 1; }
    # The network may go through a TLS proxy: the rootfs trusts what the host trusts.
    [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$wip/etc/ssl/certs/ca-certificates.crt"
    # Packages' install scripts must not start their services (snmpd, mosquitto) in here.
    printf '#!/bin/sh\nexit 101\n' >"$wip/usr/sbin/policy-rc.d"
    chmod +x "$wip/usr/sbin/policy-rc.d"
    apt_opts=(-o Acquire::Retries=3 -o Acquire::Check-Valid-Until=false)
    lp_retry lp_bwrap_at "$wip" apt-get "${apt_opts[@]}" update -qq || { rm -rf "$wip"; exit 1; }
    # shellcheck disable=SC2086
    lp_retry lp_bwrap_at "$wip" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
        install -y -qq --no-install-recommends $LABPOWER_ROOTFS_PACKAGES || { rm -rf "$wip"; exit 1; }
    lp_bwrap_at "$wip" apt-get clean >/dev/null 2>&1 || true
    lp_rootfs_stamp >"$wip/.labpower-recipe"
    mv "$wip" "$LABPOWER_ROOTFS"
    lp_log "root file system ready: $LABPOWER_ROOTFS"
}

# What a complete root file system records of the recipe that built it.
lp_rootfs_stamp() { printf '%s %s %s\n' "$LABPOWER_ROOTFS_RECIPE" "$LABPOWER_ROOTFS_BASE" "$LABPOWER_ROOTFS_PACKAGES"; }

# Makes sure a complete root file system of the current recipe exists.
lp_ensure_rootfs() {
    if [ "$(cat "$LABPOWER_ROOTFS/.labpower-recipe" 2>/dev/null)" != "$(lp_rootfs_stamp)" ]; then
        # Two checkouts may start at once: one builds, the other waits for it and uses its work.
        mkdir -p "$(dirname "$LABPOWER_ROOTFS")"
        exec 9>"$LABPOWER_ROOTFS.lock"
        flock 9
        if [ "$(cat "$LABPOWER_ROOTFS/.labpower-recipe" 2>/dev/null)" != "$(lp_rootfs_stamp)" ]; then
            lp_build_rootfs
        fi
        flock -u 9
        exec 9>&-
    fi
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cmp -s /etc/ssl/certs/ca-certificates.crt "$LABPOWER_ROOTFS/etc/ssl/certs/ca-certificates.crt" \
            || cp /etc/ssl/certs/ca-certificates.crt "$LABPOWER_ROOTFS/etc/ssl/certs/ca-certificates.crt"
    fi
}

# Runs a command inside the root file system, with the repository and caches at the same paths.
lp_bwrap() { lp_bwrap_at "$LABPOWER_ROOTFS" "$@"; }

# Runs a command inside the root file system at $1.
lp_bwrap_at() {
    local root="$1"
    shift
    mkdir -p "$LABPOWER_CACHE"
    local extra=() dir
    # Local wheel folders the host's pip configuration points at stay visible inside.
    for dir in ${PIP_FIND_LINKS:-}; do
        [ -d "$dir" ] && extra+=(--ro-bind "$dir" "$dir")
    done
    # Folders a script works in besides the repository (LABPOWER_BIND, space-separated).
    for dir in ${LABPOWER_BIND:-}; do
        [ -d "$dir" ] && extra+=(--bind "$dir" "$dir")
    done
    # /tmp first: the repository or the cache may live below it and must stay visible.
    bwrap --bind "$root" / \
        --proc /proc --dev /dev --tmpfs /tmp \
        --bind "$LABPOWER_REPO" "$LABPOWER_REPO" \
        --bind "$LABPOWER_CACHE" "$LABPOWER_CACHE" \
        --ro-bind /etc/resolv.conf /etc/resolv.conf --ro-bind /etc/hosts /etc/hosts \
        "${extra[@]}" --chdir "$PWD" \
        "$@"
}

# Sends signal $2 to the programs running below process $1: bubblewrap passes no signal on
# to what it runs, so a program started through lp_run is stopped this way, gracefully.
lp_signal_below() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        lp_signal_below "$child" "$2"
        case "$(ps -o comm= -p "$child" 2>/dev/null)" in
            bwrap | bash | sh) ;;
            *) kill -s "$2" "$child" 2>/dev/null || true ;;
        esac
    done
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
    # Inside the root file system already (a test running scripts/develop): run directly.
    [ -z "${LABPOWER_IN_ROOTFS:-}" ] || mode="host:"
    case "$mode" in
        host:*) PATH="$LABPOWER_VENV/bin:$PATH" VIRTUAL_ENV="$LABPOWER_VENV" "$@" ;;
        bwrap:*)
            lp_ensure_rootfs
            lp_bwrap env PATH="$path" VIRTUAL_ENV="$LABPOWER_VENV" LABPOWER_IN_ROOTFS=1 "$@"
            ;;
    esac
}
