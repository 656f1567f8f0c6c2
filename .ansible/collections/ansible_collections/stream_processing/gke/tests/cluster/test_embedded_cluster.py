"""Acceptance tests of the embedded cluster (issue 3), each in its own namespace on the shared cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.embedded_cluster import REPO_ROOT, EmbeddedCluster

pytestmark = pytest.mark.cluster

T = TypeVar("T")
# kwok would otherwise delete an evicted pod at once and its replacement could become Ready before
# the second eviction; a real kubelet also keeps a pod Terminating for its grace period.
TERMINATING_DELAY_ANNOTATION = "pod-delete.stage.kwok.x-k8s.io/delay"


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """Call `check` until it returns a truthy value and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


def pinned_versions() -> dict[str, str]:
    lines = (REPO_ROOT / "tools" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def deployment_manifest(
    name: str,
    replicas: int,
    *,
    anti_affinity: bool = False,
    annotations: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
) -> str:
    affinity = (
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": name}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
        if anti_affinity
        else {}
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {
                    "affinity": affinity,
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/app:1.0",
                            "resources": {"requests": requests or {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    return json.dumps(deployment)


def pods(cluster: EmbeddedCluster, namespace: str, app: str) -> list[dict]:
    return cluster.get_json("pods", "--namespace", namespace, "--selector", f"app={app}")["items"]


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def ready_pods(cluster: EmbeddedCluster, namespace: str, app: str) -> list[dict]:
    return [p for p in pods(cluster, namespace, app) if is_ready(p) and "deletionTimestamp" not in p["metadata"]]


def node_names(cluster: EmbeddedCluster) -> list[str]:
    return [node["metadata"]["name"] for node in cluster.get_json("nodes")["items"]]


def spread_deployment(cluster: EmbeddedCluster, namespace: str, name: str, **kwargs: object) -> list[dict]:
    """One pod per node via required anti-affinity; returns the Ready pods."""
    replicas = len(node_names(cluster))
    cluster.apply(deployment_manifest(name, replicas, anti_affinity=True, **kwargs), namespace)
    return wait_until(
        lambda: (found := ready_pods(cluster, namespace, name)) and len(found) == replicas and found,
        90,
        f"{replicas} Ready pods of {name}",
    )


def test_reports_the_pinned_kubernetes_version(embedded_cluster: EmbeddedCluster) -> None:
    version = json.loads(embedded_cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == pinned_versions()["K8S_VERSION"]


def test_nodes_span_three_zones_with_realistic_capacity(embedded_cluster: EmbeddedCluster) -> None:
    nodes = embedded_cluster.get_json("nodes")["items"]
    zones = {node["metadata"]["labels"]["topology.kubernetes.io/zone"] for node in nodes}
    assert len(nodes) >= 3
    assert len(zones) == 3
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert node["status"]["allocatable"]["cpu"] == "8"
        assert node["status"]["allocatable"]["memory"] == "32Gi"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"


def test_deployment_statefulset_and_daemonset_roll_out(
    embedded_cluster: EmbeddedCluster, cluster_namespace: str
) -> None:
    labels = {"app": "rollout"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
    }
    objects = [
        {"kind": "Deployment", "spec": {"replicas": 2}},
        {"kind": "StatefulSet", "spec": {"replicas": 2, "serviceName": "rollout"}},
        {"kind": "DaemonSet", "spec": {}},
    ]
    for obj in objects:
        obj.update(apiVersion="apps/v1", metadata={"name": f"rollout-{obj['kind'].lower()}"})
        obj["spec"].update(selector={"matchLabels": labels}, template=template)
        embedded_cluster.apply(json.dumps(obj), cluster_namespace)
    for obj in objects:
        embedded_cluster.kubectl(
            "rollout",
            "status",
            f"{obj['kind'].lower()}/{obj['metadata']['name']}",
            "--namespace",
            cluster_namespace,
            "--timeout=120s",
        )
    expected = 2 + 2 + len(node_names(embedded_cluster))
    assert len(ready_pods(embedded_cluster, cluster_namespace, "rollout")) == expected


def test_required_anti_affinity_places_one_pod_per_node_and_leaves_the_extra_one_pending(
    embedded_cluster: EmbeddedCluster, cluster_namespace: str
) -> None:
    running = spread_deployment(embedded_cluster, cluster_namespace, "spread")
    assert len({pod["spec"]["nodeName"] for pod in running}) == len(running)

    embedded_cluster.kubectl("scale", "deployment/spread", f"--replicas={len(running) + 1}", "-n", cluster_namespace)

    def unschedulable_pod() -> dict | None:
        for pod in pods(embedded_cluster, cluster_namespace, "spread"):
            for condition in pod["status"].get("conditions", []):
                if condition["type"] == "PodScheduled" and condition.get("reason") == "Unschedulable":
                    return pod
        return None

    pending = wait_until(unschedulable_pod, 60, "the extra replica to be reported Unschedulable")
    assert pending["status"]["phase"] == "Pending"
    assert "nodeName" not in pending["spec"]
    assert len(ready_pods(embedded_cluster, cluster_namespace, "spread")) == len(running)


def test_pod_disruption_budget_blocks_evictions_and_drain(
    embedded_cluster: EmbeddedCluster, cluster_namespace: str
) -> None:
    running = spread_deployment(
        embedded_cluster, cluster_namespace, "guarded", annotations={TERMINATING_DELAY_ANNOTATION: "60s"}
    )
    min_available = len(running) - 1
    embedded_cluster.apply(
        json.dumps(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "guarded"},
                "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "guarded"}}},
            }
        ),
        cluster_namespace,
    )

    def pdb_status() -> dict | None:
        status = embedded_cluster.get_json("pdb", "guarded", "-n", cluster_namespace).get("status", {})
        return (
            status if status.get("currentHealthy") == len(running) and status.get("disruptionsAllowed") == 1 else None
        )

    status = wait_until(pdb_status, 60, "the disruption controller to compute the PDB status")
    assert status["desiredHealthy"] == min_available

    core = client.CoreV1Api(embedded_cluster.api_client())

    def evict(pod: dict) -> None:
        name = pod["metadata"]["name"]
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=cluster_namespace))
        core.create_namespaced_pod_eviction(name, cluster_namespace, body)

    evict(running[0])
    with pytest.raises(ApiException) as refused:
        evict(running[1])
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body

    # --pod-selector: other suites share the nodes, and their pods must not be evicted.
    node = running[2]["spec"]["nodeName"]
    try:
        drain = embedded_cluster.kubectl(
            "drain", node, "--pod-selector=app=guarded", "--ignore-daemonsets", "--delete-emptydir-data",
            "--timeout=15s", check=False,
        )  # fmt: skip
    finally:
        embedded_cluster.kubectl("uncordon", node)
    assert drain.returncode != 0
    assert "violate the pod's disruption budget" in drain.stderr
    assert running[2]["metadata"]["name"] in {
        p["metadata"]["name"] for p in ready_pods(embedded_cluster, cluster_namespace, "guarded")
    }
    # Skip the simulated grace period so the namespace goes away at once.
    embedded_cluster.kubectl("delete", "pods", "--all", "--force", "--grace-period=0", "-n", cluster_namespace)


def test_hpa_reports_utilisation_and_scales_up_on_simulated_load(
    embedded_cluster: EmbeddedCluster, cluster_namespace: str
) -> None:
    usage = {"kwok.x-k8s.io/usage-cpu": "20m", "kwok.x-k8s.io/usage-memory": "32Mi"}
    embedded_cluster.apply(
        deployment_manifest("autoscaled", 1, annotations=usage, requests={"cpu": "100m", "memory": "64Mi"}),
        cluster_namespace,
    )
    embedded_cluster.apply(
        json.dumps(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "autoscaled"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "autoscaled"},
                    "minReplicas": 1,
                    "maxReplicas": 4,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": 50}},
                        }
                        for name in ("cpu", "memory")
                    ],
                },
            }
        ),
        cluster_namespace,
    )

    def utilisation() -> dict[str, int] | None:
        status = embedded_cluster.get_json("hpa", "autoscaled", "-n", cluster_namespace).get("status", {})
        figures = {
            metric["resource"]["name"]: metric["resource"]["current"].get("averageUtilization")
            for metric in status.get("currentMetrics") or []
            if metric.get("type") == "Resource"
        }
        return figures if None not in figures.values() and len(figures) == 2 else None

    figures = wait_until(utilisation, 180, "the HPA to show CPU and memory utilisation", interval=2)
    assert 10 <= figures["cpu"] <= 30
    assert 40 <= figures["memory"] <= 60
    # `kubectl top` reads metrics.k8s.io, which metrics-server computes from kwok's counters.
    top = embedded_cluster.kubectl("top", "pods", "-n", cluster_namespace, "--no-headers").stdout.split()
    assert top[1].endswith("m") and 15 <= int(top[1][:-1]) <= 25, top

    embedded_cluster.kubectl(
        "patch",
        "deployment/autoscaled",
        "-n",
        cluster_namespace,
        "--type=merge",
        "--patch",
        json.dumps({"spec": {"template": {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": "200m"}}}}}),
    )
    scaled = wait_until(
        lambda: (
            (
                n := embedded_cluster.get_json("hpa", "autoscaled", "-n", cluster_namespace)["status"].get(
                    "desiredReplicas", 0
                )
            )
            > 1
            and n
        ),
        240,
        "the HPA to scale the deployment up",
        interval=2,
    )
    assert scaled > 1


def test_statefulset_claims_of_100gi_are_bound(embedded_cluster: EmbeddedCluster, cluster_namespace: str) -> None:
    labels = {"app": "stateful"}
    embedded_cluster.apply(
        json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "stateful"},
                "spec": {
                    "replicas": 2,
                    "serviceName": "stateful",
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": "registry.example/app:1.0",
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                }
                            ]
                        },
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}},
                        }
                    ],
                },
            }
        ),
        cluster_namespace,
    )

    def bound_claims() -> list[dict] | None:
        claims = embedded_cluster.get_json("pvc", "-n", cluster_namespace)["items"]
        bound = [c for c in claims if c.get("status", {}).get("phase") == "Bound"]
        return bound if len(bound) == 2 else None

    claims = wait_until(bound_claims, 90, "2 Bound PersistentVolumeClaims")
    for claim in claims:
        assert claim["spec"]["storageClassName"] == "standard"
        assert claim["status"]["capacity"]["storage"] == "100Gi"
        volume = embedded_cluster.get_json("pv", claim["spec"]["volumeName"])
        assert volume["status"]["phase"] == "Bound"
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    embedded_cluster.kubectl("rollout", "status", "statefulset/stateful", "-n", cluster_namespace, "--timeout=90s")


def test_restricted_pod_security_rejects_a_privileged_pod(embedded_cluster: EmbeddedCluster) -> None:
    namespace = embedded_cluster.namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "privileged"},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example/app:1.0",
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        }
        result = embedded_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
        assert result.returncode != 0
        assert 'violates PodSecurity "restricted:latest"' in result.stderr
        assert "privileged" in result.stderr

        pod["metadata"]["name"] = "restricted"
        pod["spec"]["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        pod["spec"]["containers"][0]["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        embedded_cluster.apply(json.dumps(pod), namespace)
    finally:
        embedded_cluster.delete_namespace(namespace)


@pytest.mark.slow
def test_second_cluster_starts_idempotently_and_stops_without_leftovers(tmp_path: Path) -> None:
    """A separate cluster (own state dir and ports) so the shared one keeps serving other tests."""
    cluster = EmbeddedCluster(state_dir=tmp_path / "cluster", nodes=1)
    try:
        cluster.up()
        first = cluster.component_pids()
        assert set(first) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "metrics-server",
        }
        started = time.monotonic()
        cluster.up()
        assert time.monotonic() - started < 10
        assert cluster.component_pids() == first
        assert len(node_names(cluster)) == 1
    finally:
        cluster.down()
    assert cluster.component_pids() == {}
    assert not cluster.healthy()
