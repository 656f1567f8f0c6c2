# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Pure IAM policy edits: add or remove one member of one (role, condition) binding."""

from __future__ import annotations

import copy
import json

# Policies with conditional bindings must be read and written as version 3.
CONDITIONAL_POLICY_VERSION = 3


def _condition_key(condition):
    if not condition:
        return None
    return json.dumps(condition, sort_keys=True)


def _same_binding(binding, role, condition):
    return binding.get("role") == role and _condition_key(binding.get("condition")) == _condition_key(condition)


def members_of(policy, role, condition=None):
    """Members of the binding for role and condition (an unconditional binding when condition is None)."""
    members = []
    for binding in policy.get("bindings") or []:
        if _same_binding(binding, role, condition):
            members.extend(member for member in binding.get("members") or [] if member not in members)
    return members


def has_member(policy, role, member, condition=None):
    return member in members_of(policy, role, condition)


def _versioned(policy):
    if any(binding.get("condition") for binding in policy.get("bindings") or []):
        policy["version"] = CONDITIONAL_POLICY_VERSION
    return policy


def add_member(policy, role, member, condition=None):
    """Return (new_policy, changed) with member in the (role, condition) binding; policy is not modified."""
    if has_member(policy, role, member, condition):
        return copy.deepcopy(policy), False
    new_policy = copy.deepcopy(policy)
    bindings = new_policy.setdefault("bindings", [])
    for binding in bindings:
        if _same_binding(binding, role, condition):
            binding.setdefault("members", []).append(member)
            break
    else:
        binding = {"role": role, "members": [member]}
        if condition:
            binding["condition"] = copy.deepcopy(condition)
        bindings.append(binding)
    return _versioned(new_policy), True


def remove_member(policy, role, member, condition=None):
    """Return (new_policy, changed) without member in the (role, condition) binding.

    Other bindings of the same role with another condition are left alone; a binding left with no
    members is dropped, because IAM rejects empty bindings.
    """
    if not has_member(policy, role, member, condition):
        return copy.deepcopy(policy), False
    new_policy = copy.deepcopy(policy)
    kept = []
    for binding in new_policy.get("bindings") or []:
        if _same_binding(binding, role, condition):
            binding["members"] = [existing for existing in binding.get("members") or [] if existing != member]
            if not binding["members"]:
                continue
        kept.append(binding)
    new_policy["bindings"] = kept
    return _versioned(new_policy), True


def workload_identity_member(workload_pool, namespace, kubernetes_service_account):
    """The IAM principal of a Kubernetes ServiceAccount under GKE Workload Identity."""
    return "serviceAccount:%s[%s/%s]" % (workload_pool, namespace, kubernetes_service_account)
