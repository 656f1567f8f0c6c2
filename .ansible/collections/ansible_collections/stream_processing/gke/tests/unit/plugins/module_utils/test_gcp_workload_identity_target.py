from __future__ import annotations

import pytest
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import GcpParameterError
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_workload_identity import (
    WorkloadIdentityTarget,
)


def target(**overrides):
    params = dict(
        project=None,
        gcp_service_account="checkpoint-writer@acme-prod.iam.gserviceaccount.com",
        namespace="stream-processing",
        kubernetes_service_account="taskmanager",
        workload_pool=None,
        create_service_account=False,
        conflict_retries=5,
    )
    params.update(overrides)
    return WorkloadIdentityTarget(params)


def test_email_gives_account_id_project_and_pool():
    found = target()
    assert found.email == "checkpoint-writer@acme-prod.iam.gserviceaccount.com"
    assert found.account_id == "checkpoint-writer"
    assert found.account_project == "acme-prod"
    assert found.workload_pool == "acme-prod.svc.id.goog"
    assert found.member == "serviceAccount:acme-prod.svc.id.goog[stream-processing/taskmanager]"


def test_account_id_is_combined_with_project():
    found = target(gcp_service_account="checkpoint-writer", project="acme-prod")
    assert found.email == "checkpoint-writer@acme-prod.iam.gserviceaccount.com"
    assert found.account_project == "acme-prod"


def test_cluster_project_overrides_the_account_project_for_the_pool():
    found = target(project="acme-gke")
    assert found.account_project == "acme-prod"
    assert found.workload_pool == "acme-gke.svc.id.goog"


def test_explicit_workload_pool_wins():
    found = target(workload_pool="acme-fleet.svc.id.goog")
    assert found.member == "serviceAccount:acme-fleet.svc.id.goog[stream-processing/taskmanager]"


def test_google_managed_account_needs_a_project_for_the_pool():
    with pytest.raises(GcpParameterError, match="Cannot derive the workload pool"):
        target(gcp_service_account="123456789-compute@developer.gserviceaccount.com")
    found = target(gcp_service_account="123456789-compute@developer.gserviceaccount.com", project="acme-prod")
    assert found.workload_pool == "acme-prod.svc.id.goog"
    assert found.account_project == "acme-prod"


def test_domain_scoped_projects_need_the_email_and_the_pool():
    with pytest.raises(GcpParameterError, match="always for domain-scoped projects"):
        target(project="example.com:acme-prod", gcp_service_account="writer-one")
    with pytest.raises(GcpParameterError, match="Cannot derive the workload pool"):
        target(project="example.com:acme-prod")
    found = target(project="example.com:acme-prod", workload_pool="acme-prod.example.com.svc.id.goog")
    assert found.workload_pool == "acme-prod.example.com.svc.id.goog"
