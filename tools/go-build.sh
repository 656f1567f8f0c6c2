#!/usr/bin/env bash
# Builds one pinned Go component into the binary cache and prints the binary's path on the last
# line of stdout. Progress and errors go to stderr. A cached build is reused when its build key
# (version, wrapper module files, flags) is unchanged; a Go upgrade alone does not rebuild.
#
# Usage: tools/go-build.sh COMPONENT
#   COMPONENT: kubernetes (all three control-plane binaries), kube-apiserver,
#              kube-controller-manager, kube-scheduler, etcd, kwok, kwokctl, metrics-server,
#              fake-gcs-server, promtool, httpload (the project's own HTTP load generator)
# Cache:     ${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}/bin/<component>-<version>/
# Go:        go on PATH, else /usr/local/go/bin/go, or the binary named by $GO
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}"
progress_interval="${GO_BUILD_PROGRESS_SECONDS:-20}"

die() {
    printf 'go-build.sh: error: %s\n' "$*" >&2
    exit 1
}
log() { printf 'go-build.sh: %s\n' "$*" >&2; }

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
requested="$1"

# shellcheck source=/dev/null
source "$repo_root/tools/versions.env"

# component -> how to build it. "module" components are built from a wrapper module under
# tools/gomod/<name>; "install" components with `go install pkg@version` (no replace/exclude
# directives upstream, so that works).
case "$requested" in
    kubernetes | kube-apiserver | kube-controller-manager | kube-scheduler)
        component=kubernetes version="$K8S_VERSION" kind=module
        packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
            k8s.io/kubernetes/cmd/kube-scheduler)
        binaries=(kube-apiserver kube-controller-manager kube-scheduler)
        pinned_module="k8s.io/kubernetes $K8S_VERSION"
        ;;
    etcd)
        component=etcd version="$ETCD_VERSION" kind=module packages=(.) binaries=(etcd)
        pinned_module="go.etcd.io/etcd/server/v3 $ETCD_VERSION"
        ;;
    promtool)
        component=promtool version="$PROMETHEUS_VERSION" kind=module
        packages=(github.com/prometheus/prometheus/cmd/promtool) binaries=(promtool)
        pinned_module="github.com/prometheus/prometheus $PROMETHEUS_VERSION"
        ;;
    httpload)
        # Source in tools/gomod/httpload (standard library only); rebuilt when main.go changes.
        component=httpload version=local kind=module packages=(.) binaries=(httpload) pinned_module=""
        ;;
    kwok | kwokctl)
        component="$requested" version="$KWOK_VERSION" kind=install binaries=("$requested")
        packages=("sigs.k8s.io/kwok/cmd/$requested") module=sigs.k8s.io/kwok
        ;;
    metrics-server)
        component=metrics-server version="$METRICS_SERVER_VERSION" kind=install binaries=(metrics-server)
        packages=(sigs.k8s.io/metrics-server/cmd/metrics-server) module=sigs.k8s.io/metrics-server
        ;;
    fake-gcs-server)
        component=fake-gcs-server version="$FAKE_GCS_SERVER_VERSION" kind=install binaries=(fake-gcs-server)
        packages=(github.com/fsouza/fake-gcs-server) module=github.com/fsouza/fake-gcs-server
        ;;
    *) die "unknown component '$requested' (see tools/go-build.sh without arguments for the list)" ;;
esac

out_dir="$cache_dir/bin/$component-$version"
wanted_binary="$out_dir/$requested"
if [[ "$requested" == kubernetes ]]; then wanted_binary="$out_dir"; fi
module_dir="$repo_root/tools/gomod/$component"

ldflags="-s -w"
if [[ "$component" == kubernetes ]]; then
    IFS=. read -r k8s_major k8s_minor _ <<<"${version#v}"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$k8s_major -X $pkg.gitMinor=$k8s_minor"
        ldflags+=" -X $pkg.gitTreeState=clean"
    done
fi
# Version stamps that upstream release builds set, so --version reports the real version.
case "$component" in
    metrics-server) ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version" ;;
    promtool)
        # Go module v0.316.0 is Prometheus 3.16.0.
        prometheus_minor="${version#v0.}"
        prometheus_minor="${prometheus_minor%%.*}"
        ldflags+=" -X github.com/prometheus/common/version.Version=$((prometheus_minor / 100)).$((prometheus_minor % 100)).${version##*.}"
        ;;
esac
build_tags=notest

# The key names everything that changes the output; the wrapper files are hashed so an edited
# go.mod rebuilds even at the same version.
build_key() {
    local files=()
    if [[ $kind == module ]]; then
        files=("$module_dir"/go.mod)
        [[ -f "$module_dir/go.sum" ]] && files+=("$module_dir/go.sum")
        [[ -f "$module_dir/main.go" ]] && files+=("$module_dir/main.go")
    fi
    {
        printf '%s\n' "$component" "$version" "$ldflags" "$build_tags" "${packages[@]}"
        if ((${#files[@]})); then cat "${files[@]}"; fi
    } | sha256sum | cut -c1-16
}

key="$(build_key)"
cached() {
    [[ -f "$out_dir/.build-key" && "$(<"$out_dir/.build-key")" == "$key" ]] || return 1
    local b
    for b in "${binaries[@]}"; do [[ -x "$out_dir/$b" ]] || return 1; done
}

if cached; then
    printf '%s\n' "$wanted_binary"
    exit 0
fi

# --- Go toolchain -------------------------------------------------------------------------------
# GO names another go binary (tests use it to check the errors below).
go_bin="${GO:-$(command -v go || true)}"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
[[ -x "$go_bin" ]] || die "Go is not installed (need go >= $GO_MIN_VERSION on PATH or /usr/local/go/bin/go) to build $component"
go_version="$("$go_bin" env GOVERSION)"
go_version="${go_version#go}"
if [[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$go_version" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]]; then
    die "$go_bin is Go $go_version, but building $component needs Go >= $GO_MIN_VERSION"
fi
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

if [[ $kind == module ]]; then
    [[ -f "$module_dir/go.mod" ]] || die "wrapper module $module_dir/go.mod is missing"
    [[ -z "$pinned_module" ]] ||
        grep -qE "^[[:space:]]*(require[[:space:]]+)?${pinned_module// /[[:space:]]+}([[:space:]]|$)" "$module_dir/go.mod" ||
        die "$module_dir/go.mod does not require '$pinned_module' as tools/versions.env pins it; update the wrapper module"
fi

mkdir -p "$cache_dir/bin"
exec 9>"$cache_dir/bin/.$component.lock"
if ! flock -n 9; then
    log "another go-build.sh is building $component; waiting for it"
    flock 9
fi
# The other build may have finished it meanwhile.
if cached; then
    printf '%s\n' "$wanted_binary"
    exit 0
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/go-build-$component.XXXXXX")"
build_pid=""
cleanup() {
    if [[ -n "$build_pid" ]]; then kill "$build_pid" 2>/dev/null || true; fi
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- download: separates "proxy unreachable" from compile errors ----------------------------------
log "downloading modules for $component $version"
download() {
    if [[ $kind == module ]]; then
        cd "$module_dir" && "$go_bin" mod download
    else
        "$go_bin" mod download "$module@$version"
    fi
}
if ! (download) >"$work_dir/download.log" 2>&1; then
    tail -n 20 "$work_dir/download.log" >&2
    if grep -qiE 'dial tcp|no such host|i/o timeout|connection refused|TLS handshake|proxyconnect|network is unreachable' "$work_dir/download.log"; then
        die "module proxy unreachable while downloading $component $version (GOPROXY=$("$go_bin" env GOPROXY))"
    fi
    die "could not download the modules of $component $version (see the go output above)"
fi

# --- build -----------------------------------------------------------------------------------------
staging="$work_dir/out"
mkdir -p "$staging"
build() {
    if [[ $kind == module ]]; then
        cd "$module_dir" &&
            exec "$go_bin" build -v -trimpath -tags "$build_tags" -ldflags "$ldflags" -o "$staging/" "${packages[@]}"
    else
        export GOBIN="$staging"
        exec "$go_bin" install -v -trimpath -tags "$build_tags" -ldflags "$ldflags" \
            "${packages[@]/%/@$version}"
    fi
}

expected=""
if [[ $component == kubernetes ]]; then expected=" (a cold build takes 15-30 min on 2 cores)"; fi
log "building $component $version with Go $go_version$expected"
started=$SECONDS
(build) >"$work_dir/build.log" 2>&1 &
build_pid=$!
while kill -0 "$build_pid" 2>/dev/null; do
    for ((i = 0; i < progress_interval * 2; i++)); do
        kill -0 "$build_pid" 2>/dev/null || break 2
        sleep 0.5
    done
    compiled="$(grep -cvE '^(go: |#|\s)' "$work_dir/build.log" || true)"
    log "still building $component: $compiled packages compiled, $((SECONDS - started)) s elapsed"
done
build_status=0
wait "$build_pid" || build_status=$?
build_pid=""
if ((build_status != 0)); then
    grep -vE '^[a-zA-Z0-9_./-]+$' "$work_dir/build.log" | tail -n 40 >&2
    die "compile error building $component $version (exit $build_status; go output above)"
fi

for b in "${binaries[@]}"; do
    [[ -x "$staging/$b" ]] || die "building $component produced no '$b' binary"
done
printf '%s\n' "$key" >"$staging/.build-key"
rm -rf "$out_dir.old"
[[ -d "$out_dir" ]] && mv "$out_dir" "$out_dir.old"
mv "$staging" "$out_dir"
rm -rf "$out_dir.old"
log "built $component $version in $((SECONDS - started)) s -> $out_dir"
printf '%s\n' "$wanted_binary"
