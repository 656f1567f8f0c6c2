"""Shows that a PodDisruptionBudget refuses an eviction that would break it.

Evicts (really, or as a server-side dry run) the pods the budget still allows, then asks at once
for one more eviction and expects the API server to refuse it with 429. A replacement pod that
becomes ready in between legitimately raises the budget again (on the simulated cluster that takes
a fraction of a second), so an accepted extra eviction is retried after the workload recovered, up
to --attempts times. A dry run can only show a refusal when the budget already allows nothing.
Prints one JSON document; a real run waits until the workload has replaced the evicted pods.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pdb", required=True, help="PodDisruptionBudget name")
    parser.add_argument("--mode", choices=("real", "dry_run"), default="real")
    parser.add_argument("--kubeconfig", default="", help="empty: KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", default="")
    parser.add_argument("--recover-timeout", type=float, default=300.0)
    parser.add_argument("--attempts", type=int, default=5)
    return parser.parse_args(argv)


def label_selector(selector) -> str:
    terms = [f"{key}={value}" for key, value in (selector.match_labels or {}).items()]
    for expression in selector.match_expressions or []:
        operator = expression.operator
        if operator in ("In", "NotIn"):
            terms.append(f"{expression.key} {operator.lower()} ({','.join(expression.values)})")
        elif operator == "Exists":
            terms.append(expression.key)
        else:
            terms.append(f"!{expression.key}")
    return ",".join(terms)


def evict(core: client.CoreV1Api, namespace: str, pod: str, dry_run: bool) -> tuple[int, str]:
    body = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=pod, namespace=namespace),
        delete_options=client.V1DeleteOptions(dry_run=["All"] if dry_run else None),
    )
    try:
        core.create_namespaced_pod_eviction(name=pod, namespace=namespace, body=body)
        return 201, "evicted"
    except ApiException as error:
        try:
            message = json.loads(error.body).get("message", error.reason)
        except (TypeError, ValueError):
            message = error.reason
        return error.status, message


def ready(pod) -> bool:
    conditions = pod.status.conditions or []
    return pod.metadata.deletion_timestamp is None and any(
        condition.type == "Ready" and condition.status == "True" for condition in conditions
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    config.load_kube_config(config_file=args.kubeconfig or None, context=args.context or None)
    core = client.CoreV1Api()
    policy = client.PolicyV1Api()
    dry_run = args.mode == "dry_run"

    budget = policy.read_namespaced_pod_disruption_budget(args.pdb, args.namespace)
    selector = label_selector(budget.spec.selector)
    pods = [pod for pod in core.list_namespaced_pod(args.namespace, label_selector=selector).items if ready(pod)]
    allowed = budget.status.disruptions_allowed or 0
    report = {
        "pdb": args.pdb,
        "mode": args.mode,
        "selector": selector,
        "min_available": budget.spec.min_available,
        "healthy_pods": len(pods),
        "disruptions_allowed": allowed,
        "accepted": [],
        "refused": None,
        "refusal_status": None,
        "refusal_message": None,
    }
    if len(pods) <= allowed:
        report["error"] = (
            f"only {len(pods)} ready pods and the budget allows {allowed} disruptions: nothing can be refused"
        )
        print(json.dumps(report))
        return 1
    if dry_run and allowed > 0:
        report["error"] = (
            f"the budget still allows {allowed} disruptions, so a dry-run eviction cannot be refused; "
            "use mode real to evict the allowed pods first"
        )
        print(json.dumps(report))
        return 1
    report["attempts"] = []
    for _attempt in range(args.attempts):
        accepted, refused, status, message = [], None, 201, ""
        for pod in pods[: allowed + 1]:
            status, message = evict(core, args.namespace, pod.metadata.name, dry_run)
            if status != 201:
                refused = pod.metadata.name
                break
            accepted.append(pod.metadata.name)
        report["attempts"].append({"accepted": accepted, "refused": refused, "status": status, "message": message})
        report.update(accepted=accepted, refused=refused, refusal_status=status, refusal_message=message)
        if accepted and not wait_recovered(policy, args, len(pods)):
            report["error"] = f"the workload did not replace the evicted pods within {args.recover_timeout:.0f}s"
            break
        if status != 201:
            break
        # Every eviction was accepted: a replacement became ready in between; try again from the recovered state.
        pods = [pod for pod in core.list_namespaced_pod(args.namespace, label_selector=selector).items if ready(pod)]
    if status != 429 and "error" not in report:
        report["error"] = (
            f"after evicting {len(accepted)} pods (the budget allowed {allowed}) the next eviction answered "
            f"{status} {message} in each of {len(report['attempts'])} attempts"
        )
    print(json.dumps(report))
    return 0 if "error" not in report else 1


def wait_recovered(policy: client.PolicyV1Api, args: argparse.Namespace, healthy: int) -> bool:
    deadline = time.monotonic() + args.recover_timeout
    while time.monotonic() < deadline:
        budget = policy.read_namespaced_pod_disruption_budget(args.pdb, args.namespace)
        if (budget.status.current_healthy or 0) >= healthy and not budget.status.disrupted_pods:
            return True
        time.sleep(1)
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
