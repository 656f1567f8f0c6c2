#!/usr/bin/env bash
# The embedded Kubernetes cluster: upstream etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler run as plain local processes, kwok simulates the nodes (and the pods on them),
# metrics-server serves metrics.k8s.io from kwok's simulated usage. Everything binds 127.0.0.1 on
# ports picked free at start.
#
# Usage: tools/embedded-cluster/cluster.sh up|down|status|kubeconfig
#   up          start the cluster (idempotent: returns at once when it is already healthy)
#   down        stop the processes this script started, delete the cluster state (keeps the PKI)
#   status      print each component with pid and RSS; exit 0 when healthy, 1 otherwise
#   kubeconfig  print the kubeconfig path
# Environment:
#   SPG_CACHE_DIR      cache root (default ~/.cache/stream-processing-gke); binaries come from
#                      tools/go-build.sh, state lives in $SPG_CACHE_DIR/cluster
#   SPG_CLUSTER_DIR    state directory instead of $SPG_CACHE_DIR/cluster (a second cluster)
#   SPG_CLUSTER_NODES  number of simulated nodes (default 3), spread round-robin over 3 zones
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo_root/tools/embedded-cluster"
cache_dir="${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}"
state_dir="${SPG_CLUSTER_DIR:-$cache_dir/cluster}"
node_count="${SPG_CLUSTER_NODES:-3}"
pki_dir="$state_dir/pki"
pid_dir="$state_dir/pids"
log_dir="$state_dir/logs"
kubeconfig="$state_dir/kubeconfig.yaml"
ports_file="$state_dir/ports.env"
# Stopped in this order, started in reverse.
components=(metrics-server kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
zones=(europe-west1-b europe-west1-c europe-west1-d)
region=europe-west1
service_cidr=10.96.0.0/16

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
    printf 'cluster.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- processes ---------------------------------------------------------------------------------
pid_of() {
    local file="$pid_dir/$1.pid" pid
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # Only a process still running our binary with our state dir counts: pids get reused.
    alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$state_dir" || return 1
    printf '%s\n' "$pid"
}

start_component() {
    local name="$1"
    shift
    mkdir -p "$pid_dir" "$log_dir"
    # setsid: the component outlives `make cluster-up` and gets no terminal signals.
    # 8>&-: the component must not inherit (and so hold) the lock of this script.
    setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null 8>&- &
    printf '%s\n' "$!" >"$pid_dir/$name.pid"
}

# alive PID: running, not a zombie (an exited component waits as a zombie until PID 1 reaps it).
alive() {
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

stop_component() {
    local name="$1" pid i
    if pid="$(pid_of "$name")"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            alive "$pid" || break
            sleep 0.05
        done
        if alive "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_dir/$name.pid"
}

fail_start() {
    local name="$1"
    shift
    if [[ -f "$log_dir/$name.log" ]]; then
        printf -- '--- last lines of %s ---\n' "$log_dir/$name.log" >&2
        tail -n 25 "$log_dir/$name.log" >&2
    fi
    stop_all
    die "$name: $*"
}

# wait_for NAME SECONDS COMMAND...: poll COMMAND until it succeeds, failing early if NAME died.
wait_for() {
    local name="$1" timeout="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        pid_of "$name" >/dev/null || fail_start "$name" "exited during start-up"
        ((SECONDS < deadline)) || fail_start "$name" "not ready after ${timeout} s"
        sleep 0.3
    done
}

stop_all() {
    local name
    for name in "${components[@]}"; do stop_component "$name"; done
}

any_running() {
    local name
    for name in "${components[@]}"; do
        if pid_of "$name" >/dev/null; then return 0; fi
    done
    return 1
}

# --- helpers -------------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

api_get() {
    curl -fsS --max-time 5 --cacert "$pki_dir/ca.crt" --cert "$pki_dir/admin.crt" --key "$pki_dir/admin.key" \
        "https://127.0.0.1:$API_PORT$1"
}

kctl() { kubectl --kubeconfig "$kubeconfig" "$@"; }

binary() {
    local path
    path="$("$repo_root/tools/go-build.sh" "$1" | tail -n 1)" || die "could not build $1 (see above)"
    printf '%s\n' "$path"
}

healthy() {
    [[ -f "$ports_file" && -f "$kubeconfig" ]] || return 1
    # shellcheck source=/dev/null
    source "$ports_file"
    local name
    for name in "${components[@]}"; do pid_of "$name" >/dev/null || return 1; done
    [[ "$(api_get /readyz 2>/dev/null)" == ok ]]
}

# --- PKI -------------------------------------------------------------------------------------------
# issue NAME SUBJECT [SAN]: key + certificate signed by the cluster CA (or by CA_NAME when set).
issue() {
    local name="$1" subject="$2" san="${3:-}" ca="${CA_NAME:-ca}" ext="$pki_dir/$1.ext"
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki_dir/$name.key" 2>/dev/null
    openssl req -new -key "$pki_dir/$name.key" -subj "$subject" -out "$pki_dir/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ -n "$san" ]]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$san"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl x509 -req -in "$pki_dir/$name.csr" -CA "$pki_dir/$ca.crt" -CAkey "$pki_dir/$ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$pki_dir/$name.crt" 2>/dev/null
    rm -f "$pki_dir/$name.csr" "$ext"
}

new_ca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki_dir/$1.key" 2>/dev/null
    openssl req -x509 -new -key "$pki_dir/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$pki_dir/$1.crt" 2>/dev/null
}

ensure_pki() {
    [[ -f "$pki_dir/complete" ]] && return 0
    log "creating the cluster PKI in $pki_dir"
    rm -rf "$pki_dir"
    mkdir -p "$pki_dir"
    chmod 700 "$pki_dir"
    new_ca ca spg-embedded-ca
    new_ca front-proxy-ca spg-embedded-front-proxy-ca
    issue kube-apiserver /CN=kube-apiserver \
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
    issue serving /CN=spg-embedded-serving "DNS:localhost,IP:127.0.0.1"
    issue admin "/O=system:masters/CN=spg-embedded-admin"
    issue kube-controller-manager /CN=system:kube-controller-manager
    issue kube-scheduler /CN=system:kube-scheduler
    CA_NAME=front-proxy-ca issue front-proxy-client /CN=front-proxy-client
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki_dir/service-account.key" 2>/dev/null
    openssl ec -in "$pki_dir/service-account.key" -pubout -out "$pki_dir/service-account.pub" 2>/dev/null
    touch "$pki_dir/complete"
}

# write_kubeconfig FILE USER
write_kubeconfig() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: spg-embedded
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $pki_dir/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki_dir/$2.crt
    client-key: $pki_dir/$2.key
contexts:
- name: spg-embedded
  context:
    cluster: spg-embedded
    user: $2
current-context: spg-embedded
EOF
    chmod 600 "$1"
}

# --- cluster objects ---------------------------------------------------------------------------------
nodes_manifest() {
    local i zone
    for ((i = 0; i < node_count; i++)); do
        zone="${zones[i % ${#zones[@]}]}"
        cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    node.kubernetes.io/instance-type: e2-standard-8
    topology.kubernetes.io/region: $region
    topology.kubernetes.io/zone: $zone
    cloud.google.com/gke-nodepool: default-pool
    type: kwok
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
EOF
    done
}

metrics_server_manifest() {
    # The aggregator resolves an ExternalName Service to its host name, which reaches
    # metrics-server on loopback; there is no kube-proxy to route a ClusterIP.
    cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {app.kubernetes.io/name: metrics-server}
spec:
  type: ExternalName
  externalName: localhost
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
  labels: {app.kubernetes.io/name: metrics-server}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service:
    name: metrics-server
    namespace: kube-system
    port: $METRICS_PORT
EOF
}

# --- commands ----------------------------------------------------------------------------------------
# lock: one up/down at a time per state dir (parallel test sessions share the cluster).
lock() {
    mkdir -p "$state_dir"
    exec 8>"$state_dir/up-down.lock"
    flock -w "$1" 8 || die "another cluster.sh holds $state_dir/up-down.lock for more than $1 s"
}

all_running() {
    local name
    for name in "${components[@]}"; do pid_of "$name" >/dev/null || return 1; done
}

# running_and_ready: every component runs and the API becomes ready within a minute (a loaded
# machine can make /readyz slow; other test sessions may be using this cluster, so no restart).
running_and_ready() {
    local deadline=$((SECONDS + 60))
    while all_running; do
        healthy && return 0
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
    return 1
}

already_up() {
    log "already running and healthy (kubeconfig: $kubeconfig)"
    printf '%s\n' "$kubeconfig"
}

cmd_up() {
    # Fast path without the lock: a healthy cluster is the common case.
    if healthy || running_and_ready; then
        already_up
        return 0
    fi
    lock 600
    if running_and_ready; then
        already_up
        return 0
    fi
    if any_running; then
        log "found a partly running cluster; stopping it before a fresh start"
        stop_all
    fi
    local attempt
    for attempt in 1 2; do
        if (start_cluster); then return 0; fi
        # free_port only finds a port free for a moment; another process may bind it first.
        if ((attempt == 1)) && grep -qs 'address already in use' "$log_dir"/*.log; then
            rm -rf "$state_dir/logs.failed" && mv "$log_dir" "$state_dir/logs.failed"
            log "a component's port was taken before it could bind it (logs kept in $state_dir/logs.failed);" \
                "starting again on new ports"
            continue
        fi
        return 1
    done
}

# start_cluster: the processes, on ports picked now; run in a subshell (fail_start exits).
start_cluster() {
    local started=$SECONDS etcd apiserver controller_manager scheduler kwok metrics_server
    etcd="$(binary etcd)"
    apiserver="$(binary kube-apiserver)"
    controller_manager="$(binary kube-controller-manager)"
    scheduler="$(binary kube-scheduler)"
    kwok="$(binary kwok)"
    metrics_server="$(binary metrics-server)"
    command -v kubectl >/dev/null || die "kubectl is not installed (needed to configure the cluster)"
    ensure_pki
    rm -rf "$state_dir/etcd" "$log_dir" "$pid_dir"
    mkdir -p "$log_dir" "$pid_dir"

    ETCD_PORT="$(free_port)" ETCD_PEER_PORT="$(free_port)" API_PORT="$(free_port)"
    CONTROLLER_MANAGER_PORT="$(free_port)" SCHEDULER_PORT="$(free_port)" KWOK_PORT="$(free_port)"
    METRICS_PORT="$(free_port)"
    local name
    : >"$ports_file"
    for name in ETCD_PORT ETCD_PEER_PORT API_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT KWOK_PORT METRICS_PORT; do
        printf '%s=%s\n' "$name" "${!name}" >>"$ports_file"
    done
    write_kubeconfig "$kubeconfig" admin
    write_kubeconfig "$state_dir/kube-controller-manager.kubeconfig" kube-controller-manager
    write_kubeconfig "$state_dir/kube-scheduler.kubeconfig" kube-scheduler

    log "starting etcd on 127.0.0.1:$ETCD_PORT"
    # --unsafe-no-fsync: throw-away test data; fsync per write makes the whole cluster crawl.
    start_component etcd "$etcd" --name spg-embedded --data-dir "$state_dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "spg-embedded=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
    wait_for etcd 30 curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

    log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
    start_component kube-apiserver "$apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --service-cluster-ip-range "$service_cidr" \
        --tls-cert-file "$pki_dir/kube-apiserver.crt" --tls-private-key-file "$pki_dir/kube-apiserver.key" \
        --client-ca-file "$pki_dir/ca.crt" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki_dir/service-account.pub" \
        --service-account-signing-key-file "$pki_dir/service-account.key" \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
        --allow-privileged=true \
        --requestheader-client-ca-file "$pki_dir/front-proxy-ca.crt" \
        --requestheader-allowed-names front-proxy-client \
        --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
        --requestheader-extra-headers-prefix X-Remote-Extra- \
        --proxy-client-cert-file "$pki_dir/front-proxy-client.crt" \
        --proxy-client-key-file "$pki_dir/front-proxy-client.key" \
        --profiling=false --v=1
    wait_for kube-apiserver 90 api_get /readyz

    log "starting kube-controller-manager, kube-scheduler, kwok and metrics-server"
    start_component kube-controller-manager "$controller_manager" \
        --kubeconfig "$state_dir/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig "$state_dir/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig "$state_dir/kube-controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
        --cert-dir "$state_dir/kube-controller-manager-certs" \
        --leader-elect=false --use-service-account-credentials=true \
        --service-account-private-key-file "$pki_dir/service-account.key" --root-ca-file "$pki_dir/ca.crt" \
        --cluster-signing-cert-file "$pki_dir/ca.crt" --cluster-signing-key-file "$pki_dir/ca.key" \
        --service-cluster-ip-range "$service_cidr" \
        --horizontal-pod-autoscaler-sync-period 5s --profiling=false --v=1
    start_component kube-scheduler "$scheduler" \
        --kubeconfig "$state_dir/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$state_dir/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$state_dir/kube-scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
        --cert-dir "$state_dir/kube-scheduler-certs" \
        --leader-elect=false --profiling=false --v=1
    # One kwok config file per upstream stage/metric: kwok merges every --config it is given.
    local kwok_config kwok_config_args=()
    for kwok_config in "$here"/kwok/*.yml; do kwok_config_args+=(--config "$kwok_config"); done
    start_component kwok "$kwok" --kubeconfig "$kubeconfig" "${kwok_config_args[@]}" \
        --manage-all-nodes=true --node-ip 127.0.0.1 --node-port "$KWOK_PORT" \
        --server-address "127.0.0.1:$KWOK_PORT" \
        --tls-cert-file "$pki_dir/serving.crt" --tls-private-key-file "$pki_dir/serving.key" \
        --node-lease-duration-seconds 40
    start_component metrics-server "$metrics_server" --kubeconfig "$kubeconfig" \
        --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$METRICS_PORT" \
        --tls-cert-file "$pki_dir/serving.crt" --tls-private-key-file "$pki_dir/serving.key" \
        --cert-dir "$state_dir/metrics-server-certs" \
        --kubelet-preferred-address-types InternalIP --kubelet-use-node-status-port \
        --kubelet-certificate-authority "$pki_dir/ca.crt" \
        --metric-resolution 10s --kubelet-request-timeout 5s
    wait_for kube-controller-manager 60 curl -fsSk --max-time 2 "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
    wait_for kube-scheduler 60 curl -fsSk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"
    wait_for kwok 60 curl -fsSk --max-time 2 "https://127.0.0.1:$KWOK_PORT/healthz"
    wait_for metrics-server 60 curl -fsSk --max-time 2 "https://127.0.0.1:$METRICS_PORT/livez"

    log "creating $node_count nodes, StorageClasses and the metrics.k8s.io APIService"
    nodes_manifest | kctl apply -f - >/dev/null || fail_start kube-apiserver "could not create the nodes"
    kctl apply -f "$here/manifests" >/dev/null || fail_start kube-apiserver "could not apply $here/manifests"
    metrics_server_manifest | kctl apply -f - >/dev/null ||
        fail_start kube-apiserver "could not register the metrics.k8s.io APIService"
    wait_for kwok 90 kctl wait --for=condition=Ready node --all --timeout=5s
    wait_for kube-controller-manager 60 kctl get serviceaccount default --namespace default
    wait_for metrics-server 90 kctl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=5s
    log "cluster up in $((SECONDS - started)) s; kubeconfig: $kubeconfig"
    printf '%s\n' "$kubeconfig"
}

cmd_down() {
    lock 600
    if any_running; then log "stopping the cluster in $state_dir"; fi
    stop_all
    # Keep the PKI (slow to make, and kubeconfigs from an earlier run stay well-formed).
    rm -rf "$state_dir/etcd" "$pid_dir" "$ports_file" "$kubeconfig" "$state_dir"/*.kubeconfig \
        "$state_dir"/*-certs
}

cmd_status() {
    local name pid rss peak total=0 peak_total=0 all_up=0
    for name in "${components[@]}"; do
        if pid="$(pid_of "$name")"; then
            rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
            peak="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
            total=$((total + rss)) peak_total=$((peak_total + peak))
            printf '%-24s running  pid %-8s rss %6d MiB  peak %6d MiB\n' "$name" "$pid" $((rss / 1024)) $((peak / 1024))
        else
            printf '%-24s stopped\n' "$name"
            all_up=1
        fi
    done
    printf '%-24s          rss %6d MiB  peak %6d MiB (sum of components)\n' total $((total / 1024)) $((peak_total / 1024))
    if ((all_up == 0)) && healthy; then
        printf 'api: https://127.0.0.1:%s ready; kubeconfig: %s\n' "$API_PORT" "$kubeconfig"
        return 0
    fi
    printf 'cluster is not healthy (state: %s)\n' "$state_dir"
    return 1
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kubeconfig) printf '%s\n' "$kubeconfig" ;;
    *)
        sed -n '7,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
