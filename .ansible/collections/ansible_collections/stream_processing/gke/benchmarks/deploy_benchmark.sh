#!/usr/bin/env bash
# Deploy benchmark against the embedded cluster (make cluster-up), in one run on the same cluster:
#   1. the full deploy (ansible-playbook playbooks/deploy.yml -i inventories/local), into a fresh namespace;
#   2. the no-change rerun of the same command (must report changed=0);
#   3. kubectl apply --server-side of the same manifests, rendered by the same playbook
#      (platform_render_dir), step by step in deploy order into another fresh namespace, then
#      kubectl rollout status for the workloads: the same work as the ansible deploy's waits.
# Prints the three figures. Namespaces: bench-deploy and bench-kubectl (deleted before and after).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/build/collections"
cache_dir=${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}
export K8S_AUTH_KUBECONFIG=${K8S_AUTH_KUBECONFIG:-$cache_dir/cluster/kubeconfig.yaml}
steps=(namespace rbac resource_limits config postgres kafka jobmanager taskmanager high_availability network_policy monitoring)
ansible_ns=bench-deploy
kubectl_ns=bench-kubectl
timeout=${BENCH_ROLLOUT_TIMEOUT:-300}

work=$(mktemp -d "${TMPDIR:-/tmp}/deploy-benchmark.XXXXXX")
kctl() { kubectl --kubeconfig "$K8S_AUTH_KUBECONFIG" "$@"; }
cleanup() {
    kctl delete namespace "$ansible_ns" "$kubectl_ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

[[ -r "$K8S_AUTH_KUBECONFIG" ]] || { echo "deploy_benchmark: no cluster at $K8S_AUTH_KUBECONFIG (run make cluster-up)" >&2; exit 1; }
kctl delete namespace "$ansible_ns" "$kubectl_ns" --ignore-not-found --wait=true --timeout=300s >/dev/null

playbook() {
    ansible-playbook playbooks/deploy.yml -i inventories/local \
        --vault-id local@inventories/local/vault-password.txt "$@"
}
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "deploy_benchmark: full deploy into $ansible_ns ..." >&2
t0=$(seconds)
playbook -e platform_namespace="$ansible_ns" >"$work/deploy.log" 2>&1 || { tail -40 "$work/deploy.log" >&2; exit 1; }
t1=$(seconds)
echo "deploy_benchmark: no-change rerun ..." >&2
playbook -e platform_namespace="$ansible_ns" >"$work/rerun.log" 2>&1 || { tail -40 "$work/rerun.log" >&2; exit 1; }
t2=$(seconds)
rerun_changed=$(grep -Eo 'changed=[0-9]+' "$work/rerun.log" | tail -1)

echo "deploy_benchmark: rendering the same manifests for $kubectl_ns ..." >&2
playbook -e platform_namespace="$kubectl_ns" -e platform_render_dir="$work/manifests" >"$work/render.log" 2>&1 ||
    { tail -40 "$work/render.log" >&2; exit 1; }
echo "deploy_benchmark: kubectl apply --server-side, step by step, then rollout status ..." >&2
t3=$(seconds)
for step in "${steps[@]}"; do
    [[ -d "$work/manifests/$step" ]] || continue
    kctl apply --server-side --field-manager=kubectl-benchmark -f "$work/manifests/$step" >/dev/null
done
t4=$(seconds)
for kind in statefulset deployment daemonset; do
    for name in $(kctl -n "$kubectl_ns" get "$kind" -o name); do
        kctl -n "$kubectl_ns" rollout status "$name" --timeout="${timeout}s" >/dev/null
    done
done
t5=$(seconds)

printf '\nDeploy benchmark (embedded cluster, %s)\n' "$(kctl version -o json 2>/dev/null | awk -F'"' '/gitVersion/ {v=$4} END {print v}')"
printf '  full deploy (ansible-playbook deploy.yml)           %8s s\n' "$(elapsed "$t0" "$t1")"
printf '  no-change rerun (%s)                          %8s s\n' "$rerun_changed" "$(elapsed "$t1" "$t2")"
printf '  kubectl apply of the same manifests                  %8s s  (+ rollout status: %s s total)\n' \
    "$(elapsed "$t3" "$t4")" "$(elapsed "$t3" "$t5")"
