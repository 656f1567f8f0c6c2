from __future__ import annotations

import copy

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_iam_policy import (
    add_member,
    members_of,
    remove_member,
    workload_identity_member,
)

ROLE = "roles/iam.workloadIdentityUser"
KSA_A = "serviceAccount:acme.svc.id.goog[stream/jobmanager]"
KSA_B = "serviceAccount:acme.svc.id.goog[stream/taskmanager]"
KSA_C = "serviceAccount:acme.svc.id.goog[batch/worker]"
CONDITION = {"title": "office-hours", "expression": "request.time.getHours('Europe/Berlin') < 18"}


def policy_with(*bindings, etag="BwYAAAA="):
    return {"version": 3, "etag": etag, "bindings": [copy.deepcopy(binding) for binding in bindings]}


def test_member_formats_the_workload_identity_principal():
    assert workload_identity_member("acme.svc.id.goog", "stream", "jobmanager") == KSA_A


def test_add_to_empty_policy_creates_the_binding_and_keeps_the_etag():
    policy, changed = add_member({"etag": "ACAB"}, ROLE, KSA_A)
    assert changed is True
    assert policy == {"etag": "ACAB", "bindings": [{"role": ROLE, "members": [KSA_A]}]}


def test_add_appends_to_existing_binding_with_several_members():
    original = policy_with({"role": ROLE, "members": [KSA_B, KSA_C]}, {"role": "roles/viewer", "members": [KSA_A]})
    policy, changed = add_member(original, ROLE, KSA_A)
    assert changed is True
    assert policy["bindings"][0] == {"role": ROLE, "members": [KSA_B, KSA_C, KSA_A]}
    assert policy["bindings"][1] == {"role": "roles/viewer", "members": [KSA_A]}
    assert policy["etag"] == original["etag"]


def test_add_is_a_no_op_when_member_is_bound():
    original = policy_with({"role": ROLE, "members": [KSA_A, KSA_B]})
    policy, changed = add_member(original, ROLE, KSA_A)
    assert changed is False
    assert policy == original


def test_add_does_not_modify_its_input():
    original = policy_with({"role": ROLE, "members": [KSA_B]})
    snapshot = copy.deepcopy(original)
    add_member(original, ROLE, KSA_A)
    assert original == snapshot


def test_member_of_a_conditional_binding_is_not_an_unconditional_member():
    original = policy_with({"role": ROLE, "members": [KSA_A], "condition": CONDITION})
    assert members_of(original, ROLE) == []
    assert members_of(original, ROLE, CONDITION) == [KSA_A]
    policy, changed = add_member(original, ROLE, KSA_A)
    assert changed is True
    assert policy["bindings"] == [
        {"role": ROLE, "members": [KSA_A], "condition": CONDITION},
        {"role": ROLE, "members": [KSA_A]},
    ]
    assert policy["version"] == 3


def test_add_to_a_conditional_binding_matches_the_condition_regardless_of_key_order():
    reordered = {"expression": CONDITION["expression"], "title": CONDITION["title"]}
    original = policy_with({"role": ROLE, "members": [KSA_B], "condition": CONDITION})
    policy, changed = add_member(original, ROLE, KSA_A, reordered)
    assert changed is True
    assert policy["bindings"] == [{"role": ROLE, "members": [KSA_B, KSA_A], "condition": CONDITION}]


def test_adding_a_conditional_binding_raises_the_policy_version_to_3():
    policy, changed = add_member({"version": 1, "etag": "BwX=", "bindings": []}, ROLE, KSA_A, CONDITION)
    assert changed is True
    assert policy["version"] == 3
    assert policy["bindings"] == [{"role": ROLE, "members": [KSA_A], "condition": CONDITION}]


def test_remove_keeps_the_other_members():
    original = policy_with({"role": ROLE, "members": [KSA_A, KSA_B, KSA_C]})
    policy, changed = remove_member(original, ROLE, KSA_B)
    assert changed is True
    assert policy["bindings"] == [{"role": ROLE, "members": [KSA_A, KSA_C]}]


def test_removing_the_last_member_drops_the_binding_only():
    original = policy_with({"role": "roles/viewer", "members": [KSA_B]}, {"role": ROLE, "members": [KSA_A]})
    policy, changed = remove_member(original, ROLE, KSA_A)
    assert changed is True
    assert policy["bindings"] == [{"role": "roles/viewer", "members": [KSA_B]}]
    assert policy["etag"] == original["etag"]


def test_remove_leaves_a_conditional_binding_of_the_same_role_alone():
    original = policy_with(
        {"role": ROLE, "members": [KSA_A], "condition": CONDITION},
        {"role": ROLE, "members": [KSA_A]},
    )
    policy, changed = remove_member(original, ROLE, KSA_A)
    assert changed is True
    assert policy["bindings"] == [{"role": ROLE, "members": [KSA_A], "condition": CONDITION}]
    assert policy["version"] == 3


def test_remove_from_the_conditional_binding_only():
    original = policy_with(
        {"role": ROLE, "members": [KSA_A], "condition": CONDITION},
        {"role": ROLE, "members": [KSA_A, KSA_B]},
    )
    policy, changed = remove_member(original, ROLE, KSA_A, CONDITION)
    assert changed is True
    assert policy["bindings"] == [{"role": ROLE, "members": [KSA_A, KSA_B]}]


def test_remove_is_a_no_op_when_member_is_absent():
    original = policy_with({"role": ROLE, "members": [KSA_B]})
    policy, changed = remove_member(original, ROLE, KSA_A)
    assert changed is False
    assert policy == original


def test_remove_from_an_empty_policy_is_a_no_op():
    policy, changed = remove_member({"etag": "ACAB"}, ROLE, KSA_A)
    assert changed is False
    assert policy == {"etag": "ACAB"}
