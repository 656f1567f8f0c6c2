"""workload_identity against the IAM test server, through ansible-playbook."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import DEPLOYER_TOKEN, TEST_PROJECT
from tests.integration.playbook_runner import Task

pytestmark = pytest.mark.integration

ROLE = "roles/iam.workloadIdentityUser"
NAMESPACE = "stream-processing"
KSA = "taskmanager"
MEMBER = f"serviceAccount:{TEST_PROJECT}.svc.id.goog[{NAMESPACE}/{KSA}]"
OTHER_MEMBER = f"serviceAccount:{TEST_PROJECT}.svc.id.goog[{NAMESPACE}/jobmanager]"
CONDITION = {"title": "until-2030", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}


def binding_task(server, email, check=False, token=DEPLOYER_TOKEN, **args) -> Task:
    task_args = dict(
        gcp_service_account=email,
        namespace=NAMESPACE,
        kubernetes_service_account=KSA,
        project=TEST_PROJECT,
        auth_kind="accesstoken",
        access_token=token,
        iam_endpoint=server.endpoint,
    )
    task_args.update(args)
    return Task("workload_identity", task_args, check=check)


def bindings(state, email):
    return state.policy(email).get("bindings", [])


def test_bind_check_apply_rerun_keeps_other_bindings(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    existing = [
        {"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:ops@example.com"]},
        {"role": ROLE, "members": [OTHER_MEMBER], "condition": CONDITION},
    ]
    iam.edit_policy(email, lambda _bindings: existing)

    predicted = playbook_runner.run(binding_task(iam_test_server, email, check=True))[0]
    assert predicted["changed"] is True
    assert predicted["binding_changed"] is True
    assert predicted["members"] == [MEMBER]
    assert predicted["diff"]["before"]["workload_identity_users"] == []
    assert predicted["diff"]["after"]["workload_identity_users"] == [MEMBER]
    assert iam.calls_of("setIamPolicy") == []
    assert bindings(iam, email) == existing

    applied, rerun = playbook_runner.run(binding_task(iam_test_server, email), binding_task(iam_test_server, email))
    assert applied["changed"] is True
    assert applied["member"] == MEMBER
    assert applied["conflict_retries"] == 0
    assert rerun["changed"] is False
    assert rerun["binding_changed"] is False
    assert rerun["actions"] == []
    assert [call["code"] for call in iam.calls_of("setIamPolicy")] == [200]
    assert bindings(iam, email) == existing + [{"role": ROLE, "members": [MEMBER]}]
    assert iam.policy(email)["version"] == 3


def test_absent_removes_only_that_member(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    conditional = {"role": ROLE, "members": [MEMBER], "condition": CONDITION}
    iam.edit_policy(email, lambda _bindings: [conditional, {"role": ROLE, "members": [OTHER_MEMBER, MEMBER]}])

    predicted = playbook_runner.run(binding_task(iam_test_server, email, check=True, state="absent"))[0]
    assert predicted["changed"] is True
    assert predicted["members"] == [OTHER_MEMBER]
    assert iam.calls_of("setIamPolicy") == []

    removed, rerun = playbook_runner.run(
        binding_task(iam_test_server, email, state="absent"), binding_task(iam_test_server, email, state="absent")
    )
    assert removed["changed"] is True
    assert rerun["changed"] is False
    assert bindings(iam, email) == [conditional, {"role": ROLE, "members": [OTHER_MEMBER]}]


def test_removing_the_last_member_drops_the_binding(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    iam.edit_policy(
        email,
        lambda _bindings: [
            {"role": ROLE, "members": [MEMBER]},
            {"role": "roles/viewer", "members": ["user:ops@example.com"]},
        ],
    )
    removed = playbook_runner.run(binding_task(iam_test_server, email, state="absent"))[0]
    assert removed["changed"] is True
    assert removed["members"] == []
    assert bindings(iam, email) == [{"role": "roles/viewer", "members": ["user:ops@example.com"]}]


def test_concurrent_writer_between_read_and_write_loses_nothing(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    iam.edit_policy(email, lambda _bindings: [{"role": "roles/viewer", "members": ["user:ops@example.com"]}])

    def concurrent_writer(state, account):
        state.edit_policy(
            account,
            lambda current: (
                current
                + [
                    {"role": ROLE, "members": [OTHER_MEMBER]},
                    {"role": "roles/iam.serviceAccountTokenCreator", "members": ["group:sre@example.com"]},
                ]
            ),
        )

    iam.after_next_get_policy(email, concurrent_writer)
    applied = playbook_runner.run(binding_task(iam_test_server, email))[0]
    assert applied["changed"] is True
    assert applied["conflict_retries"] == 1
    assert applied["members"] == [OTHER_MEMBER, MEMBER]
    assert [call["code"] for call in iam.calls_of("setIamPolicy")] == [409, 200]
    assert len(iam.calls_of("getIamPolicy")) == 2
    assert bindings(iam, email) == [
        {"role": "roles/viewer", "members": ["user:ops@example.com"]},
        {"role": ROLE, "members": [OTHER_MEMBER, MEMBER]},
        {"role": "roles/iam.serviceAccountTokenCreator", "members": ["group:sre@example.com"]},
    ]


def test_conflicts_that_do_not_stop_fail_without_overwriting(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    writers = []
    for index in range(3):

        def writer(state, account, index=index):
            state.edit_policy(
                account,
                lambda current: current + [{"role": "roles/viewer", "members": [f"user:writer-{index}@example.com"]}],
            )

        writers.append(writer)
        iam.after_next_get_policy(email, writer)

    failed = playbook_runner.run(binding_task(iam_test_server, email, conflict_retries=2))[0]
    assert failed["failed"] is True
    assert failed["msg"].startswith(f"The IAM policy of {email} changed concurrently 3 times in a row")
    assert "nothing was overwritten" in failed["msg"]
    assert [call["code"] for call in iam.calls_of("setIamPolicy")] == [409, 409, 409]
    assert bindings(iam, email) == [
        {"role": "roles/viewer", "members": [f"user:writer-{index}@example.com"]} for index in range(3)
    ]


def test_missing_service_account_fails_unless_created(iam, iam_test_server, playbook_runner):
    email = f"stream-writer@{TEST_PROJECT}.iam.gserviceaccount.com"
    missing, predicted = playbook_runner.run(
        binding_task(iam_test_server, email),
        binding_task(iam_test_server, email, check=True, create_service_account=True),
    )
    assert missing["failed"] is True
    assert missing["msg"].startswith(
        f"GCP service account {email} does not exist (project {TEST_PROJECT}). Create it or set "
        "create_service_account: true. Nothing was changed."
    )
    assert predicted["changed"] is True
    assert predicted["service_account_created"] is True
    assert predicted["members"] == [MEMBER]
    assert predicted["diff"]["before"] == {"gcp_service_account_exists": False, "workload_identity_users": []}
    assert iam.calls_of("create") == []
    assert email not in iam.accounts

    created, rerun = playbook_runner.run(
        binding_task(iam_test_server, "stream-writer", create_service_account=True, display_name="Stream writer"),
        binding_task(iam_test_server, "stream-writer", create_service_account=True, display_name="Stream writer"),
    )
    assert created["changed"] is True
    assert created["service_account_created"] is True
    assert created["gcp_service_account"] == email
    assert iam.accounts[email]["resource"]["displayName"] == "Stream writer"
    assert bindings(iam, email) == [{"role": ROLE, "members": [MEMBER]}]
    assert rerun["changed"] is False
    assert rerun["service_account_created"] is False


def test_permission_denied_names_the_permission(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    iam.add_token(
        "reader-token",
        f"reader@{TEST_PROJECT}.iam.gserviceaccount.com",
        permissions=["iam.serviceAccounts.get", "iam.serviceAccounts.getIamPolicy"],
    )
    predicted, denied = playbook_runner.run(
        binding_task(iam_test_server, email, check=True, token="reader-token"),
        binding_task(iam_test_server, email, token="reader-token"),
    )
    # A read-only identity can still run check mode.
    assert predicted["changed"] is True
    assert denied["failed"] is True
    assert denied["msg"].startswith(
        "Permission denied: the identity of the access token lacks "
        f"iam.serviceAccounts.setIamPolicy on service account {email}."
    )
    assert denied["http_status"] == 403
    assert denied["error_reason"] == "IAM_PERMISSION_DENIED"
    assert "reader-token" not in str(denied)
    assert bindings(iam, email) == []


def test_service_account_hidden_by_missing_permission(iam, iam_test_server, playbook_runner):
    iam.add_token("nobody-token", "nobody@example.com", permissions=[])
    denied = playbook_runner.run(
        binding_task(iam_test_server, f"ghost@{TEST_PROJECT}.iam.gserviceaccount.com", token="nobody-token")
    )[0]
    assert denied["failed"] is True
    assert denied["msg"].startswith("Permission denied: the identity of the access token lacks iam.serviceAccounts.get")


def test_api_disabled_and_invalid_credentials_are_told_apart(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    number = iam.projects[TEST_PROJECT]["number"]
    iam.set_iam_enabled(TEST_PROJECT, False)
    disabled, rejected, anonymous = playbook_runner.run(
        binding_task(iam_test_server, email),
        binding_task(iam_test_server, email, token="expired-token"),
        binding_task(iam_test_server, email, auth_kind="anonymous", access_token=None),
    )
    assert disabled["failed"] is True
    assert disabled["msg"].startswith(
        f"The iam.googleapis.com API is not enabled for projects/{number}. Enable it with "
        f"'gcloud services enable iam.googleapis.com --project {number}'"
    )
    assert rejected["failed"] is True
    assert rejected["msg"].startswith("The credentials of the identity of the access token were rejected")
    assert anonymous["failed"] is True
    assert anonymous["msg"].startswith("The credentials of the anonymous caller were rejected")
    assert "expired-token" not in str(rejected)


def test_transient_errors_are_retried(iam, iam_test_server, playbook_runner):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    iam.queue_faults("getIamPolicy", 503, count=2)
    iam.queue_faults("setIamPolicy", 429, count=1)
    applied = playbook_runner.run(binding_task(iam_test_server, email))[0]
    assert applied["changed"] is True
    assert [call["code"] for call in iam.calls_of("getIamPolicy")] == [503, 503, 200]
    assert [call["code"] for call in iam.calls_of("setIamPolicy")] == [429, 200]
    assert bindings(iam, email) == [{"role": ROLE, "members": [MEMBER]}]


def service_account_key(server, state, email, permissions=("*",)) -> str:
    """A service-account key (JSON) whose token_uri is the test server, registered there for email."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    state.add_service_account_key(email, public_pem.decode(), permissions)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": TEST_PROJECT,
            "private_key_id": "test-key-1",
            "private_key": private_pem.decode(),
            "client_email": email,
            "client_id": "100000000000000000001",
            "token_uri": f"{server.endpoint}/token",
        }
    )


def test_service_account_key_auth_and_denial_naming_the_identity(iam, iam_test_server, playbook_runner, tmp_path):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    deployer = f"ci-deployer@{TEST_PROJECT}.iam.gserviceaccount.com"
    key = service_account_key(iam_test_server, iam, deployer)
    key_file = tmp_path / "key.json"
    key_file.write_text(key)
    key_file.chmod(0o600)
    reader = f"ci-reader@{TEST_PROJECT}.iam.gserviceaccount.com"
    reader_key = service_account_key(
        iam_test_server, iam, reader, ["iam.serviceAccounts.get", "iam.serviceAccounts.getIamPolicy"]
    )

    # No project option: the workload pool comes from the GSA email.
    key_args = dict(auth_kind="serviceaccount", access_token=None, project=None)
    revoked = f"ci-revoked@{TEST_PROJECT}.iam.gserviceaccount.com"
    revoked_key = service_account_key(iam_test_server, iam, revoked)
    iam.keys.pop(revoked)
    applied, denied, rejected = playbook_runner.run(
        binding_task(iam_test_server, email, service_account_file=str(key_file), **key_args),
        binding_task(iam_test_server, email, state="absent", service_account_contents=reader_key, **key_args),
        binding_task(iam_test_server, email, service_account_contents=revoked_key, **key_args),
    )
    assert applied["changed"] is True
    assert applied["workload_pool"] == f"{TEST_PROJECT}.svc.id.goog"
    assert bindings(iam, email) == [{"role": ROLE, "members": [MEMBER]}]
    assert denied["failed"] is True
    assert denied["msg"].startswith(
        f"Permission denied: {reader} lacks iam.serviceAccounts.setIamPolicy on service account {email}."
    )
    assert "PRIVATE KEY" not in json.dumps(denied)
    assert [call["identity"] for call in iam.calls_of("setIamPolicy")] == [deployer, reader]
    assert rejected["failed"] is True
    assert rejected["msg"].startswith(f"The credentials of {revoked} could not be refreshed: ('invalid_grant")
    assert "PRIVATE KEY" not in json.dumps(rejected)


def test_unreachable_kubernetes_api_fails_before_any_gcp_change(iam, iam_test_server, playbook_runner, tmp_path):
    email = iam.add_service_account(TEST_PROJECT, "checkpoint-writer")
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "closed", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "closed", "user": {"token": "unused"}}],
                "contexts": [{"name": "closed", "context": {"cluster": "closed", "user": "closed"}}],
                "current-context": "closed",
            }
        )
    )
    failed, missing_file = playbook_runner.run(
        binding_task(iam_test_server, email, annotate_ksa=True, kubeconfig=str(kubeconfig)),
        binding_task(iam_test_server, email, annotate_ksa=True, kubeconfig=str(tmp_path / "missing.yaml")),
    )
    assert failed["failed"] is True
    assert failed["msg"].startswith(f"Could not reach the Kubernetes API to get ServiceAccount stream-processing/{KSA}")
    assert missing_file["failed"] is True
    assert missing_file["msg"].startswith("Could not load the Kubernetes configuration (kubeconfig ")
    assert iam.calls_of("getIamPolicy") == []
    assert iam.calls_of("setIamPolicy") == []
