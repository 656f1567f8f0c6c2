# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE)
"""Table of good and bad platform configurations for the preflight consistency analysis."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from ansible_collections.stream_processing.gke.plugins.plugin_utils.platform_consistency import (
    ClusterFacts,
    QuantityError,
    analyse,
    parse_quantity,
)

DEFAULTS_FILE = Path(__file__).resolve().parents[4] / "roles" / "platform" / "defaults" / "main.yml"
ALL_APIS = (
    "v1",
    "apps/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "metrics.k8s.io/v1beta1",
)
LIVE_CLUSTER = {"reachable": True, "node_count": 5, "api_versions": ALL_APIS}
GKE = {
    "platform_target": "gke",
    "platform_gcp_project": "acme-prod",
    "platform_gcp_region": "europe-west1",
    "platform_gke_cluster": "streaming",
    "platform_gcs_bucket": "acme-checkpoints",
    "platform_workload_identity_enabled": True,
    "platform_gcp_service_account": "stream-processing@acme-prod.iam.gserviceaccount.com",
}


@pytest.fixture(scope="module")
def defaults():
    settings = yaml.safe_load(DEFAULTS_FILE.read_text())
    settings["platform_postgres_password"] = "a-test-password"
    return settings


def run(defaults, overrides=None, cluster=None):
    settings = copy.deepcopy(defaults)
    settings.update(overrides or {})
    return analyse(settings, ClusterFacts.from_dict(LIVE_CLUSTER if cluster is None else cluster))


GOOD = [
    pytest.param({}, LIVE_CLUSTER, id="defaults"),
    pytest.param(
        {"platform_storage_class": "premium-rwo"},
        dict(LIVE_CLUSTER, storage_classes=("standard", "premium-rwo")),
        id="known-storage-class",
    ),
    pytest.param({"platform_taskmanager_mode": "daemonset"}, LIVE_CLUSTER, id="daemonset-on-5-nodes"),
    pytest.param(
        {"platform_jobmanager_hpa_enabled": False, "platform_jobmanager_replicas": 2},
        LIVE_CLUSTER,
        id="no-hpa-pdb-below-replicas",
    ),
    pytest.param({"platform_jobmanager_anti_affinity": "required"}, LIVE_CLUSTER, id="required-anti-affinity-fits"),
    pytest.param(
        dict(GKE, platform_database_mode="cloudsql", platform_cloudsql_connection_name="acme-prod:europe-west1:db"),
        dict(LIVE_CLUSTER, bucket_exists=True),
        id="gke-cloudsql",
    ),
    pytest.param(
        {"platform_resource_quota": {"cpu": "24", "memory": "64Gi", "pods": "50"}}, LIVE_CLUSTER, id="quota-short-names"
    ),
    pytest.param(
        {"platform_monitoring_enabled": False, "platform_resource_quota": {"requests.cpu": "6500m"}},
        LIVE_CLUSTER,
        id="exact-fit-without-monitoring",
    ),
]


@pytest.mark.parametrize(("overrides", "cluster"), GOOD)
def test_good_configuration_passes(defaults, overrides, cluster):
    report = run(defaults, overrides, cluster)
    assert report.errors == []
    assert report.warnings == []


BAD = [
    pytest.param(
        {"platform_taskmanager_pdb_min_available": 3},
        LIVE_CLUSTER,
        "platform_taskmanager_pdb_min_available (3) must be lower than platform_taskmanager_replicas (3):"
        " no node could ever be drained",
        id="taskmanager-pdb-equals-replicas",
    ),
    pytest.param(
        {"platform_jobmanager_pdb_min_available": 2},
        LIVE_CLUSTER,
        "platform_jobmanager_pdb_min_available (2) must be lower than platform_jobmanager_hpa_min_replicas (2)",
        id="jobmanager-pdb-equals-hpa-min",
    ),
    pytest.param(
        {"platform_jobmanager_hpa_enabled": False, "platform_jobmanager_replicas": 1},
        LIVE_CLUSTER,
        "platform_jobmanager_pdb_min_available (1) must be lower than platform_jobmanager_replicas (1)",
        id="jobmanager-pdb-equals-replicas-without-hpa",
    ),
    pytest.param(
        {"platform_jobmanager_hpa_min_replicas": 6},
        LIVE_CLUSTER,
        "platform_jobmanager_hpa_min_replicas (6) must not be above platform_jobmanager_hpa_max_replicas (5)",
        id="hpa-min-above-max",
    ),
    pytest.param(
        {"platform_jobmanager_hpa_cpu_utilization": 170},
        LIVE_CLUSTER,
        "platform_jobmanager_hpa_cpu_utilization (170) must be a percentage",
        id="hpa-utilization-over-100",
    ),
    pytest.param(
        {"platform_taskmanager_mode": "daemonset", "platform_taskmanager_pdb_min_available": 2},
        dict(LIVE_CLUSTER, node_count=2),
        "platform_taskmanager_pdb_min_available (2) must be lower than the number of TaskManagers, which in"
        " daemonset mode is the node count (2)",
        id="daemonset-pdb-equals-nodes",
    ),
    pytest.param(
        {"platform_resource_quota": {"requests.cpu": "4"}},
        LIVE_CLUSTER,
        "platform_resource_quota['requests.cpu'] (4) is below what the workloads need at maximum scale (7:",
        id="requests-cpu-over-quota",
    ),
    pytest.param(
        {"platform_jobmanager_hpa_max_replicas": 60},
        LIVE_CLUSTER,
        "platform_resource_quota['limits.memory'] (128Gi) is below what the workloads need at maximum scale",
        id="hpa-max-over-memory-quota",
    ),
    pytest.param(
        {"platform_resource_quota": {"memory": "8Gi"}},
        LIVE_CLUSTER,
        "platform_resource_quota['memory'] (8Gi) is below",
        id="quota-alias-named-as-written",
    ),
    pytest.param(
        {"platform_resource_quota": {"pods": "5"}},
        LIVE_CLUSTER,
        "platform_resource_quota['pods'] (5) is below what the workloads need at maximum scale (12:",
        id="pods-over-quota",
    ),
    pytest.param(
        {"platform_resource_quota": {"requests.storage": "200Gi"}},
        LIVE_CLUSTER,
        "platform_resource_quota['requests.storage'] (200Gi) is below what the workloads need at maximum"
        " scale (390Gi: taskmanager 3 x 100Gi (platform_taskmanager_storage_size)",
        id="storage-over-quota",
    ),
    pytest.param(
        {"platform_resource_quota": {"persistentvolumeclaims": "3"}},
        LIVE_CLUSTER,
        "platform_resource_quota['persistentvolumeclaims'] (3) is below",
        id="pvc-count-over-quota",
    ),
    pytest.param(
        {
            "platform_database_mode": "cloudsql",
            "platform_cloudsql_connection_name": "p:r:i",
            "platform_resource_quota": {"requests.cpu": "6"},
        },
        LIVE_CLUSTER,
        "(6750m: jobmanager 5 x 550m",
        id="cloudsql-sidecar-counted",
    ),
    pytest.param(
        {"platform_taskmanager_mode": "daemonset", "platform_resource_quota": {"requests.cpu": "6"}},
        dict(LIVE_CLUSTER, node_count=10),
        "taskmanager 10 x 1",
        id="daemonset-counts-live-nodes",
    ),
    pytest.param(
        {"platform_limit_range": {"max": {"cpu": "1", "memory": "16Gi"}}},
        LIVE_CLUSTER,
        "platform_taskmanager_resources ('large'): the taskmanager container's limits.cpu (2) is above"
        " platform_limit_range.max.cpu (1)",
        id="container-over-limit-range-max",
    ),
    pytest.param(
        {
            "platform_limit_range": {"min": {"cpu": "100m", "memory": "32Mi"}},
            "platform_database_mode": "cloudsql",
            "platform_cloudsql_connection_name": "p:r:i",
        },
        LIVE_CLUSTER,
        "platform_cloudsql_proxy_resources ('nano'): the cloud-sql-proxy container's requests.cpu (50m) is below"
        " platform_limit_range.min.cpu (100m)",
        id="sidecar-under-limit-range-min",
    ),
    pytest.param(
        {"platform_limit_range": {"min": {"cpu": "1"}, "default_request": {"cpu": "500m"}}},
        LIVE_CLUSTER,
        "platform_limit_range.default_request.cpu (500m) is outside",
        id="limit-range-default-outside",
    ),
    pytest.param(
        {"platform_jobmanager_resources": "huge"},
        LIVE_CLUSTER,
        "platform_jobmanager_resources ('huge') is not a preset in platform_resource_presets",
        id="unknown-preset",
    ),
    pytest.param(
        {
            "platform_resource_presets": {
                "tiny": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            },
            "platform_jobmanager_resources": "tiny",
        },
        LIVE_CLUSTER,
        "platform_resource_presets.tiny: requests.cpu (2) is above limits.cpu (1)",
        id="requests-above-limits",
    ),
    pytest.param(
        {
            "platform_resource_presets": {
                "medium": {"requests": {"cpu": "half", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            }
        },
        LIVE_CLUSTER,
        "platform_resource_presets.medium.requests.cpu: 'half' is not a Kubernetes quantity",
        id="bad-quantity",
    ),
    pytest.param(
        {"platform_taskmanager_storage_size": "lots"},
        LIVE_CLUSTER,
        "platform_taskmanager_storage_size: 'lots' is not a Kubernetes quantity",
        id="bad-storage-size",
    ),
    pytest.param(
        {
            "platform_taskmanager_anti_affinity": "required",
            "platform_taskmanager_replicas": 4,
            "platform_taskmanager_pdb_min_available": 2,
        },
        dict(LIVE_CLUSTER, node_count=3),
        "platform_taskmanager_anti_affinity is required but platform_taskmanager_replicas (4) is above the"
        " 3 schedulable nodes",
        id="required-anti-affinity-too-few-nodes",
    ),
    pytest.param(
        {"platform_jobmanager_anti_affinity": "required"},
        dict(LIVE_CLUSTER, node_count=3),
        "platform_jobmanager_hpa_max_replicas (5) is above the 3 schedulable nodes",
        id="required-anti-affinity-at-hpa-max",
    ),
    pytest.param(
        {},
        dict(
            LIVE_CLUSTER,
            api_versions=(
                "v1",
                "apps/v1",
                "policy/v1beta1",
                "autoscaling/v1",
                "networking.k8s.io/v1",
                "rbac.authorization.k8s.io/v1",
            ),
        ),
        "The cluster does not serve policy/v1, autoscaling/v2",
        id="old-api-versions",
    ),
    pytest.param(
        {"platform_storage_class": "fast-ssd"},
        dict(LIVE_CLUSTER, storage_classes=("standard", "premium-rwo")),
        "platform_storage_class ('fast-ssd') is not a StorageClass of the cluster (premium-rwo, standard)",
        id="unknown-storage-class",
    ),
    pytest.param(
        {"platform_postgres_password": ""}, LIVE_CLUSTER, "platform_postgres_password is empty", id="empty-password"
    ),
    pytest.param(
        {"platform_database_mode": "cloudsql", "platform_cloudsql_connection_name": "just-a-name"},
        LIVE_CLUSTER,
        "platform_cloudsql_connection_name ('just-a-name') must be PROJECT:REGION:INSTANCE",
        id="bad-cloudsql-connection-name",
    ),
    pytest.param(
        {"platform_target": "gke"},
        LIVE_CLUSTER,
        "platform_gcs_bucket is empty but platform_target is gke",
        id="gke-without-bucket",
    ),
    pytest.param(
        dict(GKE, platform_gcp_service_account="not-an-email"),
        LIVE_CLUSTER,
        "platform_gcp_service_account ('not-an-email') must be a GCP service account e-mail",
        id="gke-bad-service-account",
    ),
    pytest.param(
        GKE,
        dict(LIVE_CLUSTER, bucket_exists=False),
        "platform_gcs_bucket ('acme-checkpoints') does not exist",
        id="gke-missing-bucket",
    ),
    pytest.param(
        dict(
            GKE,
            platform_workload_identity_enabled=False,
            platform_database_mode="cloudsql",
            platform_cloudsql_connection_name="p:r:i",
        ),
        LIVE_CLUSTER,
        "platform_database_mode is cloudsql but platform_workload_identity_enabled is false",
        id="cloudsql-without-workload-identity",
    ),
    pytest.param(
        {"platform_heartbeat_timeout_seconds": 5},
        LIVE_CLUSTER,
        "platform_heartbeat_timeout_seconds (5) must be above platform_heartbeat_interval_seconds (5)",
        id="heartbeat-timeout-not-above-interval",
    ),
    pytest.param(
        {"platform_taskmanager_replicas": "three"},
        LIVE_CLUSTER,
        "platform_taskmanager_replicas must be an integer, got 'three'",
        id="bad-type",
    ),
]


@pytest.mark.parametrize(("overrides", "cluster", "expected"), BAD)
def test_bad_configuration_is_reported(defaults, overrides, cluster, expected):
    report = run(defaults, overrides, cluster)
    assert any(expected in message for message in report.errors), report.errors


def test_password_never_appears_in_the_report(defaults):
    report = run(defaults, {"platform_postgres_password": "s3cr3t-value", "platform_jobmanager_hpa_min_replicas": 9})
    assert report.errors
    assert "s3cr3t-value" not in repr(report)


def test_every_problem_is_reported_at_once(defaults):
    report = run(defaults, {"platform_taskmanager_pdb_min_available": 3, "platform_jobmanager_hpa_min_replicas": 6})
    assert len(report.errors) == 2


WARNED = [
    pytest.param({}, {"reachable": False}, "The served API versions were not checked", id="cluster-unreachable"),
    pytest.param(
        {}, dict(LIVE_CLUSTER, api_versions=ALL_APIS[:-1]), "serves no metrics.k8s.io/v1beta1", id="no-metrics-api"
    ),
    pytest.param(
        {"platform_taskmanager_mode": "daemonset"},
        {"reachable": False},
        "The quota check leaves out taskmanager",
        id="daemonset-without-node-count",
    ),
    pytest.param(
        {"platform_jobmanager_anti_affinity": "required"},
        {"reachable": False},
        "could not be checked without a reachable cluster",
        id="required-anti-affinity-unchecked",
    ),
]


@pytest.mark.parametrize(("overrides", "cluster", "expected"), WARNED)
def test_unverifiable_checks_are_warnings(defaults, overrides, cluster, expected):
    report = run(defaults, overrides, cluster)
    assert report.errors == []
    assert any(expected in message for message in report.warnings), report.warnings


def test_usage_is_summed_at_maximum_scale(defaults):
    report = run(defaults)
    # JobManager 5 x 500m, TaskManager 3 x 1, PostgreSQL, Kafka 500m each, Prometheus, Grafana 250m each.
    assert report.usage["requests.cpu"] == "7"
    assert report.usage["limits.memory"] == "28Gi"
    assert report.usage["pods"] == "12"
    assert report.usage["requests.storage"] == "390Gi"
    assert report.usage["persistentvolumeclaims"] == "6"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        (1.5, Decimal("1.5")),
        ("1Gi", Decimal(2**30)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("100Ki", Decimal(102400)),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["1 Gi", "Gi", "1GB", "", True, "1.2.3"])
def test_parse_quantity_rejects(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)
