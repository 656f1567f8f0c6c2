"""The IAM test server follows the documented IAM v1 behaviour the workload_identity tests rely on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.iam_test_server import IamTestServer  # noqa: E402

pytestmark = pytest.mark.integration

PROJECT = "test-project"
TOKEN = "admin-token"
ROLE = "roles/iam.workloadIdentityUser"
CONDITION = {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}


@pytest.fixture(scope="module")
def server():
    with IamTestServer() as running:
        yield running


@pytest.fixture
def account(server):
    server.state.reset()
    server.state.add_project(PROJECT, number="123")
    server.state.add_token(TOKEN, "admin@example.com")
    return server.state.add_service_account(PROJECT, "writer-account")


def read_policy(server, email, version=None):
    query = {"options.requestedPolicyVersion": version} if version else None
    status, policy = call(server, "getIamPolicy", email, query=query)
    assert status == 200
    return policy


def call(server, verb, email, body=None, token=TOKEN, query=None):
    url = f"{server.endpoint}/v1/projects/-/serviceAccounts/{email}:{verb}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(url, json=body or {}, params=query, headers=headers, timeout=10)
    return response.status_code, response.json()


def test_empty_policy_has_the_documented_etag(server, account):
    assert call(server, "getIamPolicy", account) == (200, {"etag": "ACAB"})


def test_stale_etag_is_aborted_and_current_etag_is_accepted(server, account):
    policy = read_policy(server, account)
    status, written = call(
        server, "setIamPolicy", account, {"policy": {**policy, "bindings": [{"role": ROLE, "members": ["user:a@x"]}]}}
    )
    assert status == 200
    assert written["etag"] != policy["etag"]
    status, error = call(server, "setIamPolicy", account, {"policy": {**policy, "bindings": []}})
    assert status == 409
    assert error["error"]["status"] == "ABORTED"
    assert server.state.policy(account)["bindings"] == [{"role": ROLE, "members": ["user:a@x"]}]


def test_conditional_bindings_need_version_3(server, account):
    policy = read_policy(server, account)
    binding = {"role": ROLE, "members": ["user:a@x"], "condition": CONDITION}
    status, error = call(server, "setIamPolicy", account, {"policy": {**policy, "version": 1, "bindings": [binding]}})
    assert status == 400
    assert error["error"]["status"] == "INVALID_ARGUMENT"
    status, written = call(server, "setIamPolicy", account, {"policy": {**policy, "version": 3, "bindings": [binding]}})
    assert status == 200
    assert written["version"] == 3

    as_v3 = read_policy(server, account, version=3)
    assert as_v3["bindings"] == [binding]
    as_v1 = read_policy(server, account)
    assert as_v1["version"] == 1
    assert as_v1["bindings"][0]["role"].startswith(ROLE + "_withcond_")
    assert "condition" not in as_v1["bindings"][0]


def test_error_payloads(server, account):
    status, error = call(server, "getIamPolicy", account, token=None)
    assert status == 401
    assert error["error"]["status"] == "UNAUTHENTICATED"

    server.state.add_token("reader", "reader@example.com", permissions=["iam.serviceAccounts.getIamPolicy"])
    status, error = call(server, "setIamPolicy", account, {"policy": {}}, token="reader")
    assert status == 403
    assert error["error"]["message"] == (
        "Permission 'iam.serviceAccounts.setIamPolicy' denied on resource (or it may not exist)."
    )
    assert error["error"]["details"][0]["metadata"] == {"permission": "iam.serviceAccounts.setIamPolicy"}

    status, error = call(server, "getIamPolicy", f"ghost-account@{PROJECT}.iam.gserviceaccount.com")
    assert status == 404
    assert error["error"]["status"] == "NOT_FOUND"

    server.state.set_iam_enabled(PROJECT, False)
    status, error = call(server, "getIamPolicy", account)
    assert status == 403
    assert error["error"]["details"][0]["reason"] == "SERVICE_DISABLED"
    assert error["error"]["details"][0]["metadata"]["consumer"] == "projects/123"


def test_create_and_get_service_account(server, account):
    url = f"{server.endpoint}/v1/projects/{PROJECT}/serviceAccounts"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"accountId": "new-account", "serviceAccount": {"displayName": "New"}}
    created = requests.post(url, json=body, headers=headers, timeout=10)
    assert created.status_code == 200
    assert created.json()["email"] == f"new-account@{PROJECT}.iam.gserviceaccount.com"
    again = requests.post(url, json=body, headers=headers, timeout=10)
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "ALREADY_EXISTS"
    fetched = requests.get(f"{url}/new-account@{PROJECT}.iam.gserviceaccount.com", headers=headers, timeout=10)
    assert fetched.json()["displayName"] == "New"
    invalid = requests.post(url, json={"accountId": "x"}, headers=headers, timeout=10)
    assert invalid.status_code == 400
