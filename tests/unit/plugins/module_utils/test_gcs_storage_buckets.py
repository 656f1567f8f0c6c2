from __future__ import annotations

import pytest
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import GcpParameterError
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_storage_buckets import (
    MANAGED_PROPERTIES,
    OBJECT_PERMISSIONS,
    bucket_facts,
    check_changes_allowed,
    compare,
    permissions_report,
    request_body,
    validate_bucket_name,
    validate_desired,
)

RESOURCE = {
    "kind": "storage#bucket",
    "name": "acme-checkpoints",
    "location": "EUROPE-WEST1",
    "locationType": "region",
    "storageClass": "STANDARD",
    "versioning": {"enabled": True},
    "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True, "lockedTime": "2026-04-01T00:00:00Z"}},
    "retentionPolicy": {"retentionPeriod": "86400", "effectiveTime": "2026-01-01T00:00:00.000Z"},
    "labels": {"app": "stream-processing", "team": "data"},
    "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30}}]},
    "timeCreated": "2026-01-01T00:00:00.000Z",
    "projectNumber": "123456789012",
}


def desired(**values):
    base = dict.fromkeys(MANAGED_PROPERTIES)
    base.update(values)
    return base


def test_bucket_facts_reads_every_reported_property():
    assert bucket_facts(RESOURCE) == {
        "name": "acme-checkpoints",
        "location": "EUROPE-WEST1",
        "location_type": "region",
        "storage_class": "STANDARD",
        "versioning": True,
        "uniform_bucket_level_access": True,
        "retention_policy": {
            "retention_period": 86400,
            "is_locked": False,
            "effective_time": "2026-01-01T00:00:00.000Z",
        },
        "labels": {"app": "stream-processing", "team": "data"},
        "lifecycle_rules": [{"action": {"type": "Delete"}, "condition": {"age": 30}}],
        "time_created": "2026-01-01T00:00:00.000Z",
        "project_number": "123456789012",
    }


def test_bucket_facts_of_a_minimal_resource_uses_defaults():
    facts = bucket_facts({"name": "b", "location": "US", "storageClass": "STANDARD"})
    assert facts["versioning"] is False
    assert facts["uniform_bucket_level_access"] is False
    assert facts["retention_policy"] is None
    assert facts["labels"] == {}
    assert facts["lifecycle_rules"] == []


def test_unset_properties_are_not_compared():
    assert compare(bucket_facts(RESOURCE), desired()) == {}


def test_same_values_in_another_case_are_not_changes():
    assert (
        compare(
            bucket_facts(RESOURCE),
            desired(location="europe-west1", storage_class="standard", versioning=True, retention_period=86400),
        )
        == {}
    )


def test_changes_list_current_and_wanted_values():
    changes = compare(
        bucket_facts(RESOURCE),
        desired(versioning=False, labels={"app": "stream-processing"}, retention_period=0, lifecycle_rules=[]),
    )
    assert changes == {
        "versioning": (True, False),
        "labels": ({"app": "stream-processing", "team": "data"}, {"app": "stream-processing"}),
        "retention_period": (86400, 0),
        "lifecycle_rules": ([{"action": {"type": "Delete"}, "condition": {"age": 30}}], []),
    }


def test_patch_body_removes_dropped_labels_and_cleared_policies():
    facts = bucket_facts(RESOURCE)
    body = request_body(
        {
            "labels": {"app": "stream-processing", "env": "prod"},
            "retention_period": 0,
            "lifecycle_rules": [],
            "versioning": False,
        },
        facts,
    )
    assert body == {
        "labels": {"app": "stream-processing", "env": "prod", "team": None},
        "retentionPolicy": None,
        "lifecycle": None,
        "versioning": {"enabled": False},
    }


def test_create_body_sends_only_set_properties():
    body = request_body(
        desired(
            location="europe-west1",
            storage_class="nearline",
            uniform_bucket_level_access=True,
            retention_period=0,
            lifecycle_rules=[],
        )
    )
    assert body == {
        "location": "EUROPE-WEST1",
        "storageClass": "NEARLINE",
        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
    }


def test_location_change_is_refused_before_any_change():
    facts = bucket_facts(RESOURCE)
    with pytest.raises(GcpParameterError, match="the location of a bucket cannot be changed"):
        check_changes_allowed("acme-checkpoints", facts, compare(facts, desired(location="US")))


def test_locked_retention_cannot_be_shortened_but_can_grow():
    locked = dict(RESOURCE, retentionPolicy={"retentionPeriod": "86400", "isLocked": True})
    facts = bucket_facts(locked)
    with pytest.raises(GcpParameterError, match="locked retention policy of 86400 seconds"):
        check_changes_allowed("acme-checkpoints", facts, compare(facts, desired(retention_period=3600)))
    check_changes_allowed("acme-checkpoints", facts, compare(facts, desired(retention_period=172800)))


@pytest.mark.parametrize("name", ["acme-checkpoints", "a1b", "with.dots.example.com", "under_score-1"])
def test_valid_bucket_names(name):
    validate_bucket_name(name)


@pytest.mark.parametrize(
    "name,problem",
    [
        ("ab", "use 3-63 characters"),
        ("Upper-Case", "use 3-63 characters"),
        ("-starts-with-dash", "use 3-63 characters"),
        ("x" * 64, "names without dots are limited to 63 characters"),
        ("google-bucket", "cannot start with 'goog'"),
        ("192.168.5.4", "cannot be IP addresses"),
    ],
)
def test_invalid_bucket_names(name, problem):
    with pytest.raises(GcpParameterError, match=problem):
        validate_bucket_name(name)


def test_invalid_labels_are_listed():
    with pytest.raises(GcpParameterError, match="Invalid labels Team, env"):
        validate_desired(desired(labels={"Team": "data", "env": "Prod", "ok": "fine"}))


def test_lifecycle_rules_need_action_type_and_condition():
    with pytest.raises(GcpParameterError, match=r"lifecycle_rules\[0\] needs action.type"):
        validate_desired(desired(lifecycle_rules=[{"action": {"type": "Remove"}, "condition": {"age": 1}}]))
    with pytest.raises(GcpParameterError, match=r"lifecycle_rules\[1\] needs a non-empty condition"):
        validate_desired(
            desired(
                lifecycle_rules=[
                    {"action": {"type": "Delete"}, "condition": {"age": 1}},
                    {"action": {"type": "Delete"}},
                ]
            )
        )


def test_negative_retention_is_rejected():
    with pytest.raises(GcpParameterError, match="retention_period must be 0"):
        validate_desired(desired(retention_period=-1))


def test_permissions_report_read_only_identity():
    permissions, can_read, can_write = permissions_report(
        ["storage.objects.get", "storage.objects.list"], OBJECT_PERMISSIONS
    )
    assert permissions == {
        "storage.objects.create": False,
        "storage.objects.get": True,
        "storage.objects.list": True,
        "storage.objects.delete": False,
    }
    assert (can_read, can_write) == (True, False)


def test_permissions_report_unknown_when_not_tested():
    permissions, can_read, can_write = permissions_report(["storage.objects.get"], ["storage.objects.get"])
    assert permissions == {"storage.objects.get": True}
    assert (can_read, can_write) == (None, None)
