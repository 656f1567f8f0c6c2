# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Cloud Storage buckets: read, compare with desired properties, create, update, empty and delete."""

from __future__ import annotations

import contextlib
import json
import re
from urllib.parse import quote

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GcpError,
    GcpNotFoundError,
    GcpParameterError,
)

OBJECT_PERMISSIONS = [
    "storage.objects.create",
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.delete",
]
READ_PERMISSIONS = ("storage.objects.get", "storage.objects.list")
WRITE_PERMISSIONS = ("storage.objects.create", "storage.objects.delete")
STORAGE_CLASSES = ["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"]
LIFECYCLE_ACTIONS = ("Delete", "SetStorageClass", "AbortIncompleteMultipartUpload")
# The properties gcs_bucket manages, in the order they are reported.
MANAGED_PROPERTIES = (
    "location",
    "storage_class",
    "versioning",
    "uniform_bucket_level_access",
    "retention_period",
    "labels",
    "lifecycle_rules",
)
BUCKET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
LABEL_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_PATTERN = re.compile(r"^[a-z0-9_-]{0,63}$")


def validate_bucket_name(name):
    """Raise GcpParameterError unless name follows the Cloud Storage bucket naming rules."""
    problems = []
    if not BUCKET_NAME_PATTERN.match(name or ""):
        problems.append("use 3-63 characters: lowercase letters, digits, '-', '_' and '.', starting and ending "
                        "with a letter or digit")
    elif "." not in name and len(name) > 63:
        problems.append("names without dots are limited to 63 characters")
    elif any(len(part) > 63 for part in name.split(".")):
        problems.append("each dot-separated part is limited to 63 characters")
    if name and name.startswith("goog"):
        problems.append("names cannot start with 'goog'")
    if name and re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        problems.append("names cannot be IP addresses")
    if problems:
        raise GcpParameterError("Invalid bucket name %r: %s." % (name, "; ".join(problems)))


def validate_desired(desired):
    """Check the desired properties before any API call; raise GcpParameterError."""
    labels = desired.get("labels")
    if labels:
        bad = [key for key, value in labels.items()
               if not LABEL_KEY_PATTERN.match(str(key)) or not LABEL_VALUE_PATTERN.match(str(value))]
        if bad:
            raise GcpParameterError(
                "Invalid labels %s: keys start with a lowercase letter and, like values, hold up to 63 lowercase "
                "letters, digits, '_' or '-'." % ", ".join(sorted(str(key) for key in bad))
            )
    retention = desired.get("retention_period")
    if retention is not None and retention < 0:
        raise GcpParameterError("retention_period must be 0 (no retention policy) or a number of seconds, got %s"
                                % retention)
    for index, rule in enumerate(desired.get("lifecycle_rules") or []):
        action = rule.get("action") if isinstance(rule, dict) else None
        if not isinstance(action, dict) or action.get("type") not in LIFECYCLE_ACTIONS:
            raise GcpParameterError(
                "lifecycle_rules[%d] needs action.type, one of %s, as in the Cloud Storage JSON API"
                % (index, ", ".join(LIFECYCLE_ACTIONS))
            )
        if not isinstance(rule.get("condition"), dict) or not rule["condition"]:
            raise GcpParameterError("lifecycle_rules[%d] needs a non-empty condition, for example {age: 30}" % index)


def bucket_facts(resource):
    """The module-level view of a bucket resource of the JSON API."""
    retention = resource.get("retentionPolicy")
    return {
        "name": resource.get("name"),
        "location": resource.get("location"),
        "location_type": resource.get("locationType"),
        "storage_class": resource.get("storageClass"),
        "versioning": bool((resource.get("versioning") or {}).get("enabled", False)),
        "uniform_bucket_level_access": bool(
            ((resource.get("iamConfiguration") or {}).get("uniformBucketLevelAccess") or {}).get("enabled", False)
        ),
        "retention_policy": {
            "retention_period": int(retention.get("retentionPeriod", 0)),
            "is_locked": bool(retention.get("isLocked", False)),
            "effective_time": retention.get("effectiveTime"),
        } if retention else None,
        "labels": dict(resource.get("labels") or {}),
        "lifecycle_rules": list((resource.get("lifecycle") or {}).get("rule") or []),
        "time_created": resource.get("timeCreated"),
        "project_number": resource.get("projectNumber"),
    }


def _managed_value(facts, prop):
    if prop == "retention_period":
        return (facts.get("retention_policy") or {}).get("retention_period", 0)
    return facts.get(prop)


def _canonical(value):
    return json.dumps(value, sort_keys=True)


def _differs(prop, current, wanted):
    if prop == "location":
        return (current or "").upper() != wanted.upper()
    if prop == "storage_class":
        return (current or "").upper() != wanted.upper()
    return _canonical(current) != _canonical(wanted)


def compare(facts, desired):
    """Return {property: (current, wanted)} for each desired property (not None) that differs."""
    changes = {}
    for prop in MANAGED_PROPERTIES:
        wanted = desired.get(prop)
        if wanted is None:
            continue
        current = _managed_value(facts, prop)
        if _differs(prop, current, wanted):
            changes[prop] = (current, wanted)
    return changes


def check_changes_allowed(name, facts, changes):
    """Raise GcpParameterError for changes Cloud Storage cannot make, before anything is changed."""
    if "location" in changes:
        current, wanted = facts["location"], changes["location"][1]
        raise GcpParameterError(
            "Bucket %s is in location %s; the location of a bucket cannot be changed (wanted %s). Create a new "
            "bucket and copy the objects, or set location to %s." % (name, current, wanted, current)
        )
    policy = facts.get("retention_policy") or {}
    if "retention_period" in changes and policy.get("is_locked"):
        current, wanted = changes["retention_period"]
        if wanted < current:
            raise GcpParameterError(
                "Bucket %s has a locked retention policy of %s seconds, which cannot be removed or shortened "
                "(wanted %s)." % (name, current, wanted)
            )


def _labels_patch(current, wanted):
    patch = dict(wanted)
    # JSON API patch semantics: a label set to null is removed.
    for key in current or {}:
        if key not in wanted:
            patch[key] = None
    return patch


def request_body(desired, current_facts=None):
    """The JSON API body for creating a bucket (current_facts None) or patching the properties that differ."""
    body = {}
    for prop in MANAGED_PROPERTIES:
        wanted = desired.get(prop)
        if wanted is None:
            continue
        if prop == "location":
            if current_facts is None:
                body["location"] = wanted.upper()
        elif prop == "storage_class":
            body["storageClass"] = wanted.upper()
        elif prop == "versioning":
            body["versioning"] = {"enabled": wanted}
        elif prop == "uniform_bucket_level_access":
            body["iamConfiguration"] = {"uniformBucketLevelAccess": {"enabled": wanted}}
        elif prop == "retention_period":
            if wanted:
                body["retentionPolicy"] = {"retentionPeriod": str(wanted)}
            elif current_facts is not None:
                body["retentionPolicy"] = None
        elif prop == "labels":
            body["labels"] = _labels_patch((current_facts or {}).get("labels"), wanted) if current_facts else wanted
        elif prop == "lifecycle_rules":
            if wanted:
                body["lifecycle"] = {"rule": wanted}
            elif current_facts is not None:
                body["lifecycle"] = None
    return body


def managed_view(facts, desired):
    """The desired-property subset of facts, used for before/after in diff mode."""
    return {prop: _managed_value(facts, prop) for prop in MANAGED_PROPERTIES if desired.get(prop) is not None}


def permissions_report(granted, requested):
    """{permission: bool} plus whether objects can be read and written, from a testIamPermissions answer."""
    permissions = {permission: permission in granted for permission in requested}

    def holds_all(needed):
        if not set(needed) <= set(requested):
            return None
        return all(permissions[permission] for permission in needed)

    return permissions, holds_all(READ_PERMISSIONS), holds_all(WRITE_PERMISSIONS)


class BucketService:
    """Bucket calls of the Cloud Storage JSON API through a GcpClient."""

    def __init__(self, client):
        self.client = client

    def _url(self, path):
        return self.client.url("storage", "/storage/v1" + path)

    @staticmethod
    def _describe(name):
        return "bucket %s" % name

    def get(self, name):
        """The bucket resource, or None when it does not exist."""
        try:
            return self.client.request("GET", self._url("/b/%s" % quote(name, safe="")), self._describe(name))
        except GcpNotFoundError:
            return None

    def create(self, project, name, desired):
        body = request_body(desired)
        body["name"] = name
        return self.client.request(
            "POST", self._url("/b"), "project %s" % project, params={"project": project}, json_body=body
        )

    def patch(self, name, body):
        return self.client.request(
            "PATCH", self._url("/b/%s" % quote(name, safe="")), self._describe(name), json_body=body
        )

    def list_object_versions(self, name, limit=None):
        """[(object name, generation)] of every object version, up to limit."""
        versions = []
        params = {"versions": "true", "fields": "items(name,generation),nextPageToken"}
        while True:
            page = self.client.request(
                "GET", self._url("/b/%s/o" % quote(name, safe="")), self._describe(name), params=params
            )
            versions.extend((item["name"], item.get("generation")) for item in page.get("items") or [])
            if limit is not None and len(versions) >= limit:
                return versions[:limit]
            if not page.get("nextPageToken"):
                return versions
            params = dict(params, pageToken=page["nextPageToken"])

    def delete_object_version(self, name, object_name, generation):
        params = {"generation": generation} if generation else None
        # Already gone (deleted concurrently) is what this call wants.
        with contextlib.suppress(GcpNotFoundError):
            self.client.request(
                "DELETE",
                self._url("/b/%s/o/%s" % (quote(name, safe=""), quote(object_name, safe=""))),
                "object %s in bucket %s" % (object_name, name),
                params=params,
            )

    def delete(self, name):
        self.client.request("DELETE", self._url("/b/%s" % quote(name, safe="")), self._describe(name))

    def test_permissions(self, name, permissions):
        """The subset of permissions the caller holds on the bucket, or None when the endpoint lacks the method.

        Emulators such as fake-gcs-server do not implement testIamPermissions and answer 404 or 501 with a
        body that is not a Google API error.
        """
        try:
            answer = self.client.request(
                "GET",
                self._url("/b/%s/iam/testPermissions" % quote(name, safe="")),
                self._describe(name),
                params={"permissions": permissions},
            )
        except GcpError as exc:
            if exc.status in (404, 405, 501) and exc.reason is None:
                return None
            raise
        return list(answer.get("permissions") or [])
