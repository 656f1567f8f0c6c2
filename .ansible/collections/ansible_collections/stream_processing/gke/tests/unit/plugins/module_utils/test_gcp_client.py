from __future__ import annotations

import json

import pytest
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    BACKOFF_MAX_SECONDS,
    GcpApiDisabledError,
    GcpConflictError,
    GcpCredentialsError,
    GcpError,
    GcpNotFoundError,
    GcpParameterError,
    GcpPermissionError,
    backoff_seconds,
    translate_error,
    validate_auth_params,
)

IAM_URL = "https://iam.googleapis.com/v1/projects/-/serviceAccounts/writer@acme.iam.gserviceaccount.com:getIamPolicy"
GCS_URL = "https://storage.googleapis.com/storage/v1/b/acme-checkpoints"
CALLER = "deployer@acme.iam.gserviceaccount.com"


def body(error):
    return json.dumps({"error": error})


IAM_PERMISSION_DENIED = body(
    {
        "code": 403,
        "message": "Permission 'iam.serviceAccounts.getIamPolicy' denied on resource (or it may not exist).",
        "status": "PERMISSION_DENIED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": "iam.serviceAccounts.getIamPolicy"},
            }
        ],
    }
)
GCS_FORBIDDEN = body(
    {
        "code": 403,
        "message": "ci@acme.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud "
        "Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist).",
        "errors": [{"message": "...", "domain": "global", "reason": "forbidden"}],
    }
)
SERVICE_DISABLED = body(
    {
        "code": 403,
        "message": "Identity and Access Management (IAM) API has not been used in project 123456 before or it is "
        "disabled.",
        "status": "PERMISSION_DENIED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "iam.googleapis.com",
                    "consumer": "projects/123456",
                    "activationUrl": "https://console.developers.google.com/apis/api/iam.googleapis.com/"
                    "overview?project=123456",
                },
            }
        ],
    }
)
ACCESS_NOT_CONFIGURED = body(
    {
        "code": 403,
        "message": "Access Not Configured. Cloud Storage JSON API has not been used in project 42 before or it is "
        "disabled.",
        "errors": [{"message": "Access Not Configured.", "domain": "usageLimits", "reason": "accessNotConfigured"}],
    }
)
UNAUTHENTICATED = body(
    {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential.",
        "status": "UNAUTHENTICATED",
    }
)


def test_iam_permission_denied_names_permission_identity_and_resource():
    error = translate_error(403, IAM_PERMISSION_DENIED, "POST", IAM_URL, "service account writer@acme", CALLER)
    assert isinstance(error, GcpPermissionError)
    assert error.permission == "iam.serviceAccounts.getIamPolicy"
    assert error.identity == CALLER
    assert str(error).startswith(
        f"Permission denied: {CALLER} lacks iam.serviceAccounts.getIamPolicy on service account writer@acme."
    )
    assert error.reason == "IAM_PERMISSION_DENIED"


def test_gcs_forbidden_takes_permission_and_identity_from_the_message():
    error = translate_error(403, GCS_FORBIDDEN, "GET", GCS_URL, "bucket acme-checkpoints")
    assert isinstance(error, GcpPermissionError)
    assert error.permission == "storage.buckets.get"
    assert error.identity == "ci@acme.iam.gserviceaccount.com"
    assert "lacks storage.buckets.get on bucket acme-checkpoints" in str(error)


def test_service_disabled_is_told_apart_from_permission_denied():
    error = translate_error(403, SERVICE_DISABLED, "POST", IAM_URL, "service account writer@acme", CALLER)
    assert isinstance(error, GcpApiDisabledError)
    assert not isinstance(error, GcpPermissionError)
    message = str(error)
    assert message.startswith("The iam.googleapis.com API is not enabled for projects/123456.")
    assert "gcloud services enable iam.googleapis.com --project 123456" in message


def test_legacy_access_not_configured_is_api_disabled():
    error = translate_error(403, ACCESS_NOT_CONFIGURED, "GET", GCS_URL, "bucket acme-checkpoints", CALLER)
    assert isinstance(error, GcpApiDisabledError)
    assert "The storage.googleapis.com API is not enabled" in str(error)


def test_unauthenticated_is_a_credentials_error_naming_the_identity():
    error = translate_error(401, UNAUTHENTICATED, "GET", GCS_URL, "bucket acme-checkpoints", CALLER)
    assert isinstance(error, GcpCredentialsError)
    assert str(error).startswith(f"The credentials of {CALLER} were rejected (invalid or expired).")


def test_not_found_and_conflict_have_their_own_classes():
    missing = translate_error(
        404,
        body({"code": 404, "message": "Unknown service account", "status": "NOT_FOUND"}),
        "GET",
        IAM_URL,
        "service account writer@acme",
    )
    assert isinstance(missing, GcpNotFoundError)
    assert str(missing).startswith("Not found: service account writer@acme.")
    conflict = translate_error(
        409,
        body({"code": 409, "status": "ABORTED", "message": "There were concurrent policy changes."}),
        "POST",
        IAM_URL,
        "service account writer@acme",
    )
    assert isinstance(conflict, GcpConflictError)
    assert conflict.reason == "ABORTED"


def test_a_body_that_is_not_json_keeps_status_and_text():
    error = translate_error(501, "404 page not found\n", "GET", GCS_URL)
    specific = (GcpNotFoundError, GcpPermissionError, GcpApiDisabledError, GcpCredentialsError, GcpConflictError)
    assert isinstance(error, GcpError)
    assert not isinstance(error, specific)
    assert error.status == 501
    assert error.reason is None
    assert "404 page not found" in str(error)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8])
def test_backoff_grows_and_is_capped(attempt):
    ceiling = min(0.5 * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS)
    assert ceiling / 2 <= backoff_seconds(attempt) <= ceiling


def test_backoff_honours_retry_after_up_to_the_cap():
    assert backoff_seconds(1, retry_after=3) == 3
    assert backoff_seconds(1, retry_after=600) == BACKOFF_MAX_SECONDS


def params(**overrides):
    base = dict(
        auth_kind="application",
        scopes=["https://www.googleapis.com/auth/cloud-platform"],
        storage_endpoint=None,
        iam_endpoint=None,
        service_account_contents=None,
    )
    base.update(overrides)
    return base


def test_default_endpoints():
    assert validate_auth_params(params(), ("storage", "iam")) == {
        "storage": "https://storage.googleapis.com",
        "iam": "https://iam.googleapis.com",
    }


def test_endpoint_override_drops_the_trailing_slash():
    assert validate_auth_params(params(storage_endpoint="http://127.0.0.1:4443/"), ("storage",)) == {
        "storage": "http://127.0.0.1:4443"
    }


def test_endpoint_without_scheme_is_rejected():
    with pytest.raises(GcpParameterError, match=r"storage_endpoint must be a URL starting with http:// or https://"):
        validate_auth_params(params(storage_endpoint="127.0.0.1:4443"), ("storage",))


def test_anonymous_needs_every_endpoint_overridden():
    with pytest.raises(GcpParameterError, match=r"auth_kind=anonymous is for emulators .* set iam_endpoint"):
        validate_auth_params(params(auth_kind="anonymous"), ("iam",))
    assert validate_auth_params(params(auth_kind="anonymous", iam_endpoint="http://127.0.0.1:1"), ("iam",))


def test_service_account_contents_errors_do_not_echo_the_key():
    secret = '{"type": "service_account", "private_key": "-----BEGIN'
    with pytest.raises(GcpParameterError) as raised:
        validate_auth_params(params(auth_kind="serviceaccount", service_account_contents=secret), ("storage",))
    assert str(raised.value) == "service_account_contents is not valid JSON"
    with pytest.raises(GcpParameterError, match=r'"type": "service_account"'):
        validate_auth_params(
            params(auth_kind="serviceaccount", service_account_contents='{"type": "user"}'), ("storage",)
        )


def test_scopes_cannot_be_empty():
    with pytest.raises(GcpParameterError, match="scopes must list at least one OAuth scope"):
        validate_auth_params(params(scopes=[]), ("storage",))
