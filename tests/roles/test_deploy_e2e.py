"""playbooks/deploy.yml and teardown.yml with inventories/local against the embedded cluster.

The molecule scenarios cover each role and the full stack in both TaskManager modes (converge,
idempotence, verify); these tests cover what molecule cannot: check mode with a diff, bad
configurations stopping the play before anything is applied, the PostgreSQL password staying out
of every output under -vvv --diff, and the teardown keeping the claims.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "e2e-roles"
BAD_NAMESPACE = "e2e-roles-bad"
# The local inventory's vault value (a non-secret test value) and a second one set during the tests.
LOCAL_PASSWORD = "local-test-postgres-password"
NEW_PASSWORD = "e2e-rotated-Secret-7f3a91"
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def run_playbook(cluster, playbook, *args, namespace=NAMESPACE, timeout=900):
    env = {
        **cluster.ansible_env,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / "build" / "collections"),
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_NOCOLOR": "true",
    }
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        f"playbooks/{playbook}",
        "-i",
        "inventories/local",
        "--vault-id",
        "local@inventories/local/vault-password.txt",
        "-e",
        f"platform_namespace={namespace}",
        *args,
    ]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def recap(result):
    found = RECAP.findall(result.stdout)
    assert found, result.stdout[-3000:] + result.stderr[-3000:]
    ok, changed, unreachable, failed = (int(value) for value in found[-1])
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def objects(cluster, kind, namespace=NAMESPACE):
    return cluster.get_json(kind, "--namespace", namespace)["items"]


@pytest.fixture(scope="module")
def deployed(embedded_cluster):
    embedded_cluster.kubectl(
        "delete", "namespace", NAMESPACE, BAD_NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300
    )
    result = run_playbook(embedded_cluster, "deploy.yml")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    yield embedded_cluster, result
    embedded_cluster.kubectl("delete", "namespace", NAMESPACE, BAD_NAMESPACE, "--ignore-not-found", "--wait=false")


def test_deploy_ends_with_a_summary(deployed):
    result = deployed[1]
    summary = result.stdout[result.stdout.rindex("TASK [stream_processing.gke.platform : Summary]") :]
    assert f"Namespace {NAMESPACE} on embedded" in summary
    for line in (
        "Deployment/jobmanager",
        "StatefulSet/taskmanager",
        "StatefulSet/postgres",
        "StatefulSet/kafka",
        "PDB/",
        "HPA/",
    ):
        assert line in summary, summary
    assert "NOT READY" not in summary, summary


def test_rerun_changes_nothing(deployed):
    cluster = deployed[0]
    result = run_playbook(cluster, "deploy.yml")
    assert result.returncode == 0, result.stdout[-5000:]
    assert recap(result)["changed"] == 0, result.stdout[-5000:]


def test_check_diff_shows_a_change_and_applies_nothing(deployed):
    cluster = deployed[0]
    result = run_playbook(
        cluster, "deploy.yml", "--check", "--diff", "-e", "platform_log_level=DEBUG",
        "-e", "platform_jobmanager_hpa_max_replicas=6",
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert recap(result)["changed"] >= 2
    assert re.search(r'^\+\s+"?SP_LOG_LEVEL"?: "?DEBUG', result.stdout, re.MULTILINE), result.stdout[-5000:]
    # A step with several objects (PDBs and HPA) shows the changed field of the object it changes.
    assert '"HorizontalPodAutoscaler/jobmanager-hpa:"' in result.stdout, result.stdout[-5000:]
    assert re.search(r'"\+\s+maxReplicas: 6"', result.stdout), result.stdout[-5000:]
    hpa = cluster.get_json("hpa", "jobmanager-hpa", "--namespace", NAMESPACE)
    assert hpa["spec"]["maxReplicas"] == 5
    config_map = cluster.get_json("configmap", "stream-processing-config", "--namespace", NAMESPACE)
    assert config_map["data"]["SP_LOG_LEVEL"] == "INFO"


def test_a_changed_setting_rolls_the_pods_that_read_it(deployed):
    cluster = deployed[0]
    annotation = "checksum/config"

    def template_checksums():
        return {
            f"{kind}/{name}": cluster.get_json(kind, name, "--namespace", NAMESPACE)["spec"]["template"]["metadata"][
                "annotations"
            ][annotation]
            for kind, name in (("deployment", "jobmanager"), ("statefulset", "taskmanager"))
        }

    before = template_checksums()
    result = run_playbook(cluster, "deploy.yml", "-e", "platform_log_level=DEBUG")
    assert result.returncode == 0, result.stdout[-5000:]
    after = template_checksums()
    assert all(after[workload] != before[workload] for workload in before), (before, after)
    assert len(set(after.values())) == 1, after
    # The apply waited for the rollouts: every live JobManager and TaskManager pod is a new one.
    pods = [
        pod
        for pod in objects(cluster, "pods")
        if pod["metadata"]["name"].startswith(("jobmanager-", "taskmanager-"))
        and "deletionTimestamp" not in pod["metadata"]
    ]
    assert len(pods) == 5, [pod["metadata"]["name"] for pod in pods]
    assert {pod["metadata"]["annotations"][annotation] for pod in pods} == set(after.values())


def test_check_against_a_new_namespace_lists_what_it_would_create(embedded_cluster):
    fresh = f"{NAMESPACE}-fresh"
    result = run_playbook(embedded_cluster, "deploy.yml", "--check", "--diff", namespace=fresh)
    assert result.returncode == 0, result.stdout[-5000:]
    assert recap(result)["changed"] >= 10
    for kind_and_name in ("ServiceAccount/stream-processing-sa", "Deployment/jobmanager", "StatefulSet/taskmanager"):
        assert f"would create {kind_and_name} (namespace {fresh} does not exist yet)" in result.stdout
    assert re.search(r'"\+\s+name: jobmanager"', result.stdout), result.stdout[-5000:]
    assert LOCAL_PASSWORD not in result.stdout
    assert base64.b64encode(LOCAL_PASSWORD.encode()).decode() not in result.stdout
    namespaces = [item["metadata"]["name"] for item in embedded_cluster.get_json("namespaces")["items"]]
    assert fresh not in namespaces


def test_password_never_appears_in_output(deployed):
    cluster = deployed[0]
    forms = {LOCAL_PASSWORD, NEW_PASSWORD}
    forms |= {base64.b64encode(value.encode()).decode() for value in set(forms)}
    for args in (["--check"], []):
        result = run_playbook(
            cluster,
            "deploy.yml",
            "-vvv",
            "--diff",
            "--tags",
            "config",
            "-e",
            f"platform_postgres_password={NEW_PASSWORD}",
            *args,
        )
        assert result.returncode == 0, result.stdout[-5000:]
        output = result.stdout + result.stderr
        leaked = [form for form in forms if form in output]
        assert leaked == [], f"password leaked with {args}: {leaked}"
    secret = cluster.get_json("secret", "stream-processing-postgres", "--namespace", NAMESPACE)
    assert base64.b64decode(secret["data"]["SP_DATABASE_PASSWORD"]).decode() == NEW_PASSWORD


BAD_CONFIGURATIONS = [
    pytest.param(
        ["-e", "platform_taskmanager_pdb_min_available=3"],
        "platform_taskmanager_pdb_min_available (3) must be lower than platform_taskmanager_replicas (3)",
        id="pdb-equals-replicas",
    ),
    pytest.param(
        ["-e", "platform_jobmanager_hpa_min_replicas=6"],
        "platform_jobmanager_hpa_min_replicas (6) must not be above platform_jobmanager_hpa_max_replicas (5)",
        id="hpa-min-above-max",
    ),
    pytest.param(
        ["-e", '{"platform_resource_quota": {"requests.cpu": "1", "limits.cpu": "2"}}'],
        "platform_resource_quota['requests.cpu'] (1) is below what the workloads need at maximum scale",
        id="requests-over-quota",
    ),
    pytest.param(["-e", "platform_taskmanager_replicas=three"], "platform_taskmanager_replicas", id="bad-type"),
    pytest.param(["-e", "platform_taskmanager_mode=deamonset"], "platform_taskmanager_mode", id="bad-choice"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD_CONFIGURATIONS)
def test_bad_configuration_fails_before_anything_is_applied(embedded_cluster, extra, expected):
    result = run_playbook(embedded_cluster, "deploy.yml", *extra, namespace=BAD_NAMESPACE, timeout=300)
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout[-5000:]
    stats = recap(result)
    assert stats["changed"] == 0
    found = embedded_cluster.kubectl("get", "namespace", BAD_NAMESPACE, "--ignore-not-found", "-o", "name")
    assert found.stdout.strip() == "", "a failed preflight must leave nothing behind"


# kwok keeps a pod with this annotation Terminating for the given time, like a kubelet's grace period.
TERMINATING_DELAY_ANNOTATION = "pod-delete.stage.kwok.x-k8s.io/delay"
PLATFORM_PODS = "app.kubernetes.io/part-of=stream-processing"


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_drain_succeeds_once_then_the_taskmanager_pdb_blocks_a_second(deployed):
    cluster = deployed[0]

    def ready(kind, name):
        status = cluster.get_json(kind, name, "--namespace", NAMESPACE).get("status", {})
        return status.get("readyReplicas", 0)

    # The JobManager PDB (minAvailable 1) allows a drain only once the HPA has reached its minimum of 2.
    wait_for(lambda: ready("deployment", "jobmanager") >= 2, 120, "2 ready JobManagers")
    wait_for(lambda: ready("statefulset", "taskmanager") == 3, 120, "3 ready TaskManagers")

    def pod_metadata(name):
        return cluster.get_json("pod", name, "--namespace", NAMESPACE)["metadata"]

    pods = cluster.get_json("pods", "--namespace", NAMESPACE, "-l", "app.kubernetes.io/name=taskmanager")["items"]
    taskmanagers = {pod["metadata"]["name"]: pod["spec"]["nodeName"] for pod in pods}
    assert len(set(taskmanagers.values())) == 3, f"TaskManagers are not spread over the nodes: {taskmanagers}"
    first_node, second_node = taskmanagers["taskmanager-0"], taskmanagers["taskmanager-1"]
    # The evicted TaskManager stays Terminating, so the StatefulSet is one replica short meanwhile.
    cluster.kubectl("annotate", "pod", "taskmanager-0", f"{TERMINATING_DELAY_ANNOTATION}=30s", "--namespace", NAMESPACE)

    drain_args = ("--pod-selector", PLATFORM_PODS, "--ignore-daemonsets", "--delete-emptydir-data")
    try:
        first = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "drain", first_node, *drain_args, "--timeout=120s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(
            lambda: pod_metadata("taskmanager-0").get("deletionTimestamp"),
            60,
            "the first drain to evict taskmanager-0",
        )
        second = cluster.kubectl("drain", second_node, *drain_args, "--timeout=10s", check=False, timeout=60)
        first_out, first_err = first.communicate(timeout=180)
    finally:
        for node in (first_node, second_node):
            cluster.kubectl("uncordon", node)
    assert first.returncode == 0, first_out + first_err
    assert second.returncode != 0, second.stdout
    assert "violate the pod's disruption budget" in second.stderr, second.stderr
    assert "taskmanager-1" in second.stderr, second.stderr
    assert pod_metadata("taskmanager-1").get("deletionTimestamp") is None
    wait_for(lambda: ready("statefulset", "taskmanager") == 3, 120, "the TaskManagers to be whole again")


def test_teardown_keeps_claims_unless_asked(deployed):
    cluster = deployed[0]
    result = run_playbook(cluster, "teardown.yml")
    assert result.returncode == 0, result.stdout[-5000:]
    for kind in ("deployments", "statefulsets", "services", "configmaps,secrets", "poddisruptionbudgets"):
        left = [
            item["metadata"]["name"]
            for item in objects(cluster, kind)
            if item["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "stream-processing"
        ]
        assert left == [], f"{kind} left after teardown: {left}"
    claims = objects(cluster, "persistentvolumeclaims")
    assert claims, "teardown must keep the PersistentVolumeClaims by default"
    result = run_playbook(
        cluster, "teardown.yml", "-e", "teardown_delete_pvcs=true", "-e", "teardown_delete_namespace=true"
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert cluster.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name").stdout.strip() == ""


def test_inventories_name_their_target(embedded_cluster):
    del embedded_cluster
    for name in ("dev", "staging", "prod"):
        settings = yaml.safe_load(
            (REPO_ROOT / "inventories" / name / "group_vars" / "stream_processing" / "main.yml").read_text()
        )
        assert settings["platform_target"] == "gke"
        assert settings["platform_workload_identity_enabled"] is True
        assert settings["platform_gcp_preflight_enabled"] is True
        for key in (
            "platform_gcp_project",
            "platform_gcp_region",
            "platform_gke_cluster",
            "platform_gcs_bucket",
            "platform_gcp_service_account",
        ):
            assert settings[key], f"{name}: {key}"
    assert os.path.exists(REPO_ROOT / "inventories" / "local" / "vault-password.txt")
