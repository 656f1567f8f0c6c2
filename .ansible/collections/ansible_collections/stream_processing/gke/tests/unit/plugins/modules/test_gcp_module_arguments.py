"""Bad input fails with a clear message before any API call.

Every case points the endpoints at 127.0.0.1:9 (discard port, nothing listens): a module that tried to connect
would fail with a connection error instead of the expected message.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stream_processing.gke.plugins.modules import gcs_bucket, gcs_bucket_info, workload_identity

UNREACHABLE = "http://127.0.0.1:9"


def run(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def bucket_args(**overrides):
    args = dict(name="acme-checkpoints", project="acme", auth_kind="anonymous", storage_endpoint=UNREACHABLE)
    args.update(overrides)
    return args


def identity_args(**overrides):
    args = dict(
        gcp_service_account="checkpoint-writer@acme-prod.iam.gserviceaccount.com",
        namespace="stream",
        kubernetes_service_account="taskmanager",
        auth_kind="anonymous",
        iam_endpoint=UNREACHABLE,
    )
    args.update(overrides)
    return args


@pytest.mark.parametrize("module", [gcs_bucket, gcs_bucket_info])
def test_invalid_bucket_name(module, capsys):
    result = run(module, bucket_args(name="Not_A_Bucket!"), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("Invalid bucket name 'Not_A_Bucket!'")


def test_anonymous_without_endpoint_is_refused(capsys):
    result = run(gcs_bucket_info, bucket_args(storage_endpoint=None), capsys)
    assert result["failed"] is True
    assert "auth_kind=anonymous is for emulators and test servers only; set storage_endpoint" in result["msg"]


def test_serviceaccount_needs_a_key(capsys):
    result = run(gcs_bucket, bucket_args(auth_kind="serviceaccount"), capsys)
    assert result["failed"] is True
    assert "auth_kind is serviceaccount but any of the following are missing" in result["msg"]


def test_key_file_and_contents_are_mutually_exclusive(capsys):
    result = run(
        gcs_bucket,
        bucket_args(
            auth_kind="serviceaccount",
            service_account_file="/nonexistent.json",
            service_account_contents='{"type": "service_account"}',
        ),
        capsys,
    )
    assert result["failed"] is True
    assert "parameters are mutually exclusive: service_account_file|service_account_contents" in result["msg"]


def test_accesstoken_needs_a_token(capsys):
    result = run(workload_identity, identity_args(auth_kind="accesstoken"), capsys)
    assert result["failed"] is True
    assert "auth_kind is accesstoken but all of the following are missing: access_token" in result["msg"]


def test_invalid_storage_class_choice(capsys):
    result = run(gcs_bucket, bucket_args(storage_class="COLD"), capsys)
    assert result["failed"] is True
    assert "value of storage_class must be one of: STANDARD, NEARLINE, COLDLINE, ARCHIVE" in result["msg"]


def test_invalid_labels_fail_before_any_call(capsys):
    result = run(gcs_bucket, bucket_args(labels={"Team": "data"}), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("Invalid labels Team")


def test_gcp_env_fallback_is_used(capsys, monkeypatch):
    monkeypatch.setenv("GCP_AUTH_KIND", "accesstoken")
    result = run(gcs_bucket_info, dict(name="acme-checkpoints", storage_endpoint=UNREACHABLE), capsys)
    assert result["failed"] is True
    assert "auth_kind is accesstoken" in result["msg"]


def test_account_id_without_project(capsys):
    result = run(workload_identity, identity_args(gcp_service_account="checkpoint-writer"), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("gcp_service_account 'checkpoint-writer' is an account ID, so a project is needed")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(namespace="Stream_Processing"), "namespace 'Stream_Processing' is not a valid Kubernetes namespace name"),
        (dict(kubernetes_service_account="-sa"), "kubernetes_service_account '-sa' is not a valid ServiceAccount name"),
        (dict(workload_pool="acme-prod.example.com"), "workload_pool 'acme-prod.example.com' must look like"),
        (dict(gcp_service_account="not an email@x"), "gcp_service_account 'not an email@x' is not a service-account"),
        (dict(conflict_retries=-1), "conflict_retries must be 0 or more"),
        (dict(project="Acme"), "project 'Acme' is not a valid project ID"),
        (
            dict(gcp_service_account="abc", project="acme-prod", create_service_account=True),
            "Cannot create service account 'abc'",
        ),
    ],
)
def test_workload_identity_names_are_validated(overrides, message, capsys):
    result = run(workload_identity, identity_args(**overrides), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
