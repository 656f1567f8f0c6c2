"""workload_identity's KSA annotation against the embedded Kubernetes control plane (and the IAM test server)."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import DEPLOYER_TOKEN, TEST_PROJECT
from tests.integration.playbook_runner import Task

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

ANNOTATION = "iam.gke.io/gcp-service-account"
ROLE = "roles/iam.workloadIdentityUser"
KSA = "taskmanager"


def ksa_task(server, email, namespace, check=False, **args) -> Task:
    task_args = dict(
        gcp_service_account=email,
        namespace=namespace,
        kubernetes_service_account=KSA,
        project=TEST_PROJECT,
        auth_kind="accesstoken",
        access_token=DEPLOYER_TOKEN,
        iam_endpoint=server.endpoint,
        annotate_ksa=True,
    )
    task_args.update(args)
    return Task("workload_identity", task_args, check=check)


def annotations(cluster, namespace):
    result = cluster.kubectl("get", "serviceaccount", KSA, "--namespace", namespace, "--output", "json", check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)["metadata"].get("annotations", {})


def create_ksa(cluster, namespace, extra_annotations=None):
    metadata = {"name": KSA, "namespace": namespace, "annotations": extra_annotations or {}}
    # create, not apply: apply would add its own last-applied-configuration annotation.
    manifest = json.dumps({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata})
    cluster.kubectl("create", "--filename", "-", input=manifest)


def test_annotates_an_existing_ksa(iam, iam_test_server, embedded_cluster, cluster_namespace, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    create_ksa(embedded_cluster, cluster_namespace, {"team": "data"})
    env = {"K8S_AUTH_KUBECONFIG": str(embedded_cluster.kubeconfig)}

    predicted = playbook_runner.run(ksa_task(iam_test_server, email, cluster_namespace, check=True), env=env)[0]
    assert predicted["changed"] is True
    assert predicted["kubernetes_service_account"]["annotation_changed"] is True
    assert predicted["diff"]["before"]["ksa_annotation"] is None
    assert predicted["diff"]["after"]["ksa_annotation"] == email
    assert annotations(embedded_cluster, cluster_namespace) == {"team": "data"}
    assert iam.calls_of("setIamPolicy") == []

    applied, rerun = playbook_runner.run(
        ksa_task(iam_test_server, email, cluster_namespace),
        ksa_task(iam_test_server, email, cluster_namespace),
        env=env,
    )
    assert applied["changed"] is True
    assert applied["binding_changed"] is True
    assert applied["kubernetes_service_account"] == dict(
        namespace=cluster_namespace, name=KSA, annotation=email, created=False, annotation_changed=True
    )
    assert rerun["changed"] is False
    assert annotations(embedded_cluster, cluster_namespace) == {"team": "data", ANNOTATION: email}
    member = f"serviceAccount:{TEST_PROJECT}.svc.id.goog[{cluster_namespace}/{KSA}]"
    assert iam.policy(email)["bindings"] == [{"role": ROLE, "members": [member]}]

    # absent removes the binding and this GSA's annotation, and keeps the KSA and its other annotations.
    removed, rerun = playbook_runner.run(
        ksa_task(iam_test_server, email, cluster_namespace, state="absent"),
        ksa_task(iam_test_server, email, cluster_namespace, state="absent"),
        env=env,
    )
    assert removed["changed"] is True
    assert rerun["changed"] is False
    assert annotations(embedded_cluster, cluster_namespace) == {"team": "data"}
    assert iam.policy(email).get("bindings", []) == []


def test_missing_ksa_fails_before_any_change(
    iam, iam_test_server, embedded_cluster, cluster_namespace, playbook_runner
):
    email = f"new-writer@{TEST_PROJECT}.iam.gserviceaccount.com"
    failed = playbook_runner.run(
        ksa_task(
            iam_test_server,
            email,
            cluster_namespace,
            create_service_account=True,
            kubeconfig=str(embedded_cluster.kubeconfig),
        )
    )[0]
    assert failed["failed"] is True
    assert failed["msg"] == (
        f"Kubernetes ServiceAccount {cluster_namespace}/{KSA} does not exist, so it cannot be annotated with "
        f"{ANNOTATION}={email}. Create it first (for example with kubernetes.core.k8s) or set create_ksa: true. "
        "Nothing was changed."
    )
    assert failed["changed"] is False
    assert email not in iam.accounts
    assert iam.calls_of("create") == []
    assert iam.calls_of("setIamPolicy") == []
    assert annotations(embedded_cluster, cluster_namespace) is None


def test_creates_the_ksa_when_asked(iam, iam_test_server, embedded_cluster, cluster_namespace, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    kubeconfig = str(embedded_cluster.kubeconfig)
    predicted = playbook_runner.run(
        ksa_task(iam_test_server, email, cluster_namespace, check=True, create_ksa=True, kubeconfig=kubeconfig)
    )[0]
    assert predicted["changed"] is True
    assert predicted["kubernetes_service_account"]["created"] is True
    assert annotations(embedded_cluster, cluster_namespace) is None

    created, rerun = playbook_runner.run(
        ksa_task(iam_test_server, email, cluster_namespace, create_ksa=True, kubeconfig=kubeconfig),
        ksa_task(iam_test_server, email, cluster_namespace, create_ksa=True, kubeconfig=kubeconfig),
    )
    assert created["changed"] is True
    assert created["kubernetes_service_account"]["created"] is True
    assert rerun["changed"] is False
    assert annotations(embedded_cluster, cluster_namespace) == {ANNOTATION: email}


def test_annotation_of_another_gsa_is_replaced_and_not_removed_by_absent(
    iam, iam_test_server, embedded_cluster, cluster_namespace, playbook_runner
):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    other = f"legacy-writer@{TEST_PROJECT}.iam.gserviceaccount.com"
    create_ksa(embedded_cluster, cluster_namespace, {ANNOTATION: other})
    kubeconfig = str(embedded_cluster.kubeconfig)

    untouched = playbook_runner.run(
        ksa_task(iam_test_server, email, cluster_namespace, state="absent", kubeconfig=kubeconfig)
    )[0]
    assert untouched["changed"] is False
    assert annotations(embedded_cluster, cluster_namespace) == {ANNOTATION: other}

    replaced = playbook_runner.run(ksa_task(iam_test_server, email, cluster_namespace, kubeconfig=kubeconfig))[0]
    assert replaced["changed"] is True
    assert replaced["diff"]["before"]["ksa_annotation"] == other
    assert annotations(embedded_cluster, cluster_namespace) == {ANNOTATION: email}
