#!/usr/bin/env bash
# Installs Debian's PostgreSQL server package when it is missing and prints the directory that
# holds its initdb and postgres binaries on the last line of stdout. Progress and errors go to
# stderr. Tests run throwaway clusters from these binaries as the package's `postgres` user.
#
# Usage: tools/deps/postgresql.sh
set -euo pipefail

die() {
    printf 'postgresql.sh: error: %s\n' "$*" >&2
    exit 1
}
log() { printf 'postgresql.sh: %s\n' "$*" >&2; }

[[ $# -eq 0 ]] || die "no arguments expected"

# The newest installed major version; Debian installs each under /usr/lib/postgresql/<major>/bin.
server_bindir() {
    local initdb
    initdb="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$initdb" && -x "${initdb%/initdb}/postgres" ]] && printf '%s\n' "${initdb%/initdb}"
}

bindir="$(server_bindir || true)"
if [[ -z "$bindir" ]]; then
    ((EUID == 0)) || die "PostgreSQL is not installed; run 'sudo apt-get install -y postgresql' (or make deps as root)"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and this is not a Debian-based system (no apt-get)"
    log "installing the Debian postgresql package"
    started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when the cached ones do not know the package.
    if ! apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1; then
        log "apt-get update (the package lists do not have postgresql)"
        apt-get update -qq >&2 || die "apt-get update failed"
        apt-get install -y --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
    fi
    # The package starts a system cluster on port 5432; tests never use it, so stop it.
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _; do
            pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
        done
    fi
    bindir="$(server_bindir || true)"
    [[ -n "$bindir" ]] || die "postgresql was installed but no /usr/lib/postgresql/*/bin/initdb was found"
    log "installed PostgreSQL in $((SECONDS - started)) s"
fi

# Root cannot run the server, so tests switch to the account the package creates.
if ((EUID == 0)) && ! id -u postgres >/dev/null 2>&1; then
    die "user 'postgres' does not exist; reinstall the postgresql-common package (apt-get install --reinstall postgresql-common)"
fi
printf '%s\n' "$bindir"
