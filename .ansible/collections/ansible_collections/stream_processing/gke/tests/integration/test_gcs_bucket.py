"""gcs_bucket and gcs_bucket_info against a real fake-gcs-server, through ansible-playbook."""

from __future__ import annotations

import pytest
import requests

from tests.integration.conftest import TEST_PROJECT
from tests.integration.playbook_runner import Task
from tests.support.gcs_emulator import GcsEmulator, unique_bucket_name

pytestmark = pytest.mark.integration


def emulator_args(emulator: GcsEmulator, name: str, **args) -> dict:
    return dict(name=name, project=TEST_PROJECT, auth_kind="anonymous", storage_endpoint=emulator.endpoint, **args)


def bucket(emulator: GcsEmulator, name: str, check: bool = False, **args) -> Task:
    return Task("gcs_bucket", emulator_args(emulator, name, **args), check=check)


def bucket_info(emulator: GcsEmulator, name: str, **args) -> Task:
    return Task("gcs_bucket_info", emulator_args(emulator, name, **args))


def versioning_of(emulator: GcsEmulator, name: str) -> bool:
    return emulator.client().get_bucket(name).versioning_enabled


def test_round_trip_missing_create_rerun_change_check_delete(storage_emulator, playbook_runner):
    name = unique_bucket_name("round-trip")
    desired = dict(location=storage_emulator.location.lower(), storage_class="STANDARD", versioning=False)

    # 1. Missing: reported, warned about by name and project, not created.
    # 2. Create in check mode: predicted, nothing created. (Read-only tasks share one ansible-playbook run.)
    missing, predicted = playbook_runner.run(
        bucket_info(storage_emulator, name), bucket(storage_emulator, name, check=True, **desired)
    )
    assert not missing.get("failed")
    assert missing["exists"] is False
    assert missing["changed"] is False
    assert missing["bucket"] == {}
    assert missing["project"] == TEST_PROJECT
    expected_warning = f"GCS bucket '{name}' does not exist in project {TEST_PROJECT}"
    assert any(expected_warning in warning for warning in missing["warnings"])
    assert predicted["changed"] is True
    assert predicted["actions"] == [f"create bucket {name} in project {TEST_PROJECT}"]
    assert predicted["diff"] == {"before": {"exists": False}, "after": dict(exists=True, **desired)}
    assert not storage_emulator.bucket_exists(name)

    # 2-3. Create for real, then the rerun is not changed.
    created, rerun = playbook_runner.run(
        bucket(storage_emulator, name, **desired), bucket(storage_emulator, name, **desired)
    )
    assert created["changed"] is True
    assert created["bucket"]["name"] == name
    assert created["bucket"]["location"] == storage_emulator.location
    assert created["bucket"]["versioning"] is False
    assert "warnings" not in created or created["warnings"] == []
    assert storage_emulator.bucket_exists(name)
    assert rerun["changed"] is False
    assert rerun["actions"] == []
    assert rerun["diff"]["before"] == rerun["diff"]["after"]

    # 4-5. Change a property: check mode shows the diff and changes nothing.
    changed = {**desired, "versioning": True}
    predicted = playbook_runner.run(bucket(storage_emulator, name, check=True, **changed))[0]
    assert predicted["changed"] is True
    assert predicted["actions"] == ["update versioning"]
    assert predicted["diff"]["before"]["versioning"] is False
    assert predicted["diff"]["after"]["versioning"] is True
    assert versioning_of(storage_emulator, name) is False

    updated, rerun = playbook_runner.run(
        bucket(storage_emulator, name, **changed), bucket(storage_emulator, name, **changed)
    )
    assert updated["changed"] is True
    assert updated["bucket"]["versioning"] is True
    assert versioning_of(storage_emulator, name) is True
    assert rerun["changed"] is False

    # The info module now sees the change; the emulator has no testIamPermissions, which is reported, not faked.
    # 6. Delete in check mode changes nothing.
    info, predicted = playbook_runner.run(
        bucket_info(storage_emulator, name), bucket(storage_emulator, name, check=True, state="absent")
    )
    assert info["exists"] is True
    assert info["bucket"]["versioning"] is True
    assert info["bucket"]["storage_class"] == "STANDARD"
    assert info["bucket"]["location"] == storage_emulator.location
    assert info["permissions"] is None
    assert info["can_read_objects"] is None
    assert any("does not implement testIamPermissions" in warning for warning in info["warnings"])

    assert predicted["changed"] is True
    assert predicted["diff"] == {"before": {"exists": True}, "after": {"exists": False}}
    assert storage_emulator.bucket_exists(name)

    # 6. Delete, then the rerun is not changed.
    deleted, rerun = playbook_runner.run(
        bucket(storage_emulator, name, state="absent"), bucket(storage_emulator, name, state="absent")
    )
    assert deleted["changed"] is True
    assert deleted["objects_deleted"] == 0
    assert not storage_emulator.bucket_exists(name)
    assert rerun["changed"] is False


def test_non_empty_bucket_is_deleted_only_with_force(storage_emulator, playbook_runner):
    name = storage_emulator.create_bucket(unique_bucket_name("non-empty"), versioning=True)
    blob = storage_emulator.client().bucket(name).blob("checkpoints/job-1/chk-1")
    blob.upload_from_string(b"first")
    blob.upload_from_string(b"second")
    listing = requests.get(
        f"{storage_emulator.endpoint}/storage/v1/b/{name}/o", params={"versions": "true"}, timeout=10
    ).json()
    versions = [(item["name"], item["generation"]) for item in listing["items"]]
    assert len(versions) == 2

    refused, predicted = playbook_runner.run(
        bucket(storage_emulator, name, state="absent"),
        bucket(storage_emulator, name, check=True, state="absent", force=True),
    )
    assert refused["failed"] is True
    assert refused["msg"].startswith(
        f"Bucket {name} in project {TEST_PROJECT} is not empty (objects include: checkpoints/job-1/chk-1)"
    )
    assert "Set force: true" in refused["msg"]
    assert predicted["changed"] is True
    assert predicted["objects_deleted"] == len(versions)
    assert storage_emulator.list_objects(name) == ["checkpoints/job-1/chk-1"]

    deleted = playbook_runner.run(bucket(storage_emulator, name, state="absent", force=True))[0]
    assert deleted["changed"] is True
    assert deleted["objects_deleted"] == len(versions)
    assert not storage_emulator.bucket_exists(name)


def test_location_of_an_existing_bucket_is_not_changed(storage_emulator, playbook_runner):
    name = storage_emulator.create_bucket(unique_bucket_name("location"))
    result = playbook_runner.run(bucket(storage_emulator, name, location="ASIA-EAST1", versioning=True))[0]
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"Bucket {name} is in location {storage_emulator.location}; the location of a bucket cannot be changed"
    )
    assert versioning_of(storage_emulator, name) is False
    storage_emulator.delete_bucket(name)


def test_properties_the_endpoint_does_not_apply_are_reported(storage_emulator, playbook_runner):
    name = unique_bucket_name("unapplied")
    try:
        created = playbook_runner.run(bucket(storage_emulator, name, labels={"app": "stream-processing"}))[0]
        assert created["changed"] is True
        assert created["bucket"]["labels"] == {}
        assert any("did not apply: labels" in warning for warning in created["warnings"])
    finally:
        if storage_emulator.bucket_exists(name):
            storage_emulator.delete_bucket(name)


def test_missing_bucket_without_warning(storage_emulator, playbook_runner):
    name = unique_bucket_name("quiet")
    result = playbook_runner.run(bucket_info(storage_emulator, name, warn_if_missing=False, permissions=[]))[0]
    assert result["exists"] is False
    assert not result.get("warnings")
    assert not storage_emulator.bucket_exists(name)


def test_unreachable_endpoint_is_a_clear_failure(playbook_runner, storage_emulator):
    result = playbook_runner.run(
        Task(
            "gcs_bucket_info",
            dict(
                name="any-bucket",
                project=TEST_PROJECT,
                auth_kind="accesstoken",
                access_token="not-a-token",
                storage_endpoint="http://127.0.0.1:9",
            ),
        )
    )[0]
    assert result["failed"] is True
    assert result["msg"].startswith("Could not reach GET http://127.0.0.1:9/storage/v1/b/any-bucket (attempt 5)")
    assert "not-a-token" not in str(result)
