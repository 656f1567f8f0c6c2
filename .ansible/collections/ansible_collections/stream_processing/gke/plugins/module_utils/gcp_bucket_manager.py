# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""What gcs_bucket_info and gcs_bucket do, given their AnsibleModule."""

from __future__ import annotations

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GcpError,
    GcpParameterError,
    connect,
    failure_details,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_storage_buckets import (
    MANAGED_PROPERTIES,
    BucketService,
    bucket_facts,
    check_changes_allowed,
    compare,
    managed_view,
    permissions_report,
    request_body,
    validate_bucket_name,
    validate_desired,
)

# How many object names a refusal to delete a non-empty bucket lists.
SHOWN_OBJECTS = 5


def _fail(module, exc):
    module.fail_json(msg=str(exc), **failure_details(exc))


def _connect(module):
    return connect(module, apis=("storage",))


def _project_label(project):
    return project or "(unknown: set project or GCP_PROJECT)"


def run_bucket_info(module):
    params = module.params
    try:
        validate_bucket_name(params["name"])
        client = _connect(module)
        service = BucketService(client)
        resource = service.get(params["name"])
        result = dict(changed=False, exists=resource is not None, project=client.project, bucket={},
                      permissions=None, can_read_objects=None, can_write_objects=None)
        if resource is None:
            if params["warn_if_missing"]:
                module.warn(
                    "GCS bucket '%s' does not exist in project %s (storage endpoint %s). Create it, for example "
                    "with stream_processing.gke.gcs_bucket, or fix the bucket name."
                    % (params["name"], _project_label(client.project), client.endpoints["storage"])
                )
            module.exit_json(**result)
        result["bucket"] = bucket_facts(resource)
        if params["permissions"]:
            granted = service.test_permissions(params["name"], params["permissions"])
            if granted is None:
                module.warn(
                    "The storage endpoint %s does not implement testIamPermissions (as with emulators); permissions "
                    "are reported as null." % client.endpoints["storage"]
                )
            else:
                result["permissions"], result["can_read_objects"], result["can_write_objects"] = permissions_report(
                    granted, params["permissions"]
                )
        module.exit_json(**result)
    except GcpError as exc:
        _fail(module, exc)


class BucketManager:
    """Brings one bucket to state present or absent; writes only outside check mode."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["name"]
        self.desired = {prop: self.params.get(prop) for prop in MANAGED_PROPERTIES}
        if self.desired["labels"] is not None:
            self.desired["labels"] = {str(key): str(value) for key, value in self.desired["labels"].items()}
        self.result = dict(changed=False, name=self.name, bucket={}, actions=[])
        self.diff = dict(before={}, after={})

    def run(self):
        try:
            validate_bucket_name(self.name)
            validate_desired(self.desired)
            self.client = _connect(self.module)
            self.service = BucketService(self.client)
            self.result["project"] = self.client.project
            resource = self.service.get(self.name)
            if self.params["state"] == "present":
                self.present(resource)
            else:
                self.absent(resource)
        except GcpError as exc:
            _fail(self.module, exc)
        if self.module._diff:
            self.result["diff"] = self.diff
        self.module.exit_json(**self.result)

    def present(self, resource):
        if resource is None:
            self.create()
            return
        facts = bucket_facts(resource)
        changes = compare(facts, self.desired)
        check_changes_allowed(self.name, facts, changes)
        self.diff["before"] = dict(exists=True, **managed_view(facts, self.desired))
        self.result["bucket"] = facts
        if not changes:
            self.diff["after"] = self.diff["before"]
            return
        self.result["changed"] = True
        self.result["actions"].append("update %s" % ", ".join(sorted(changes)))
        wanted = {prop: value[1] for prop, value in changes.items()}
        after = dict(self.diff["before"], **wanted)
        self.diff["after"] = after
        if self.module.check_mode:
            return
        updated = bucket_facts(self.service.patch(self.name, request_body(wanted, facts)))
        self.result["bucket"] = updated
        self.warn_unapplied(updated)

    def create(self):
        project = self.client.project
        if not project:
            raise GcpParameterError(
                "Creating bucket %s needs a project: set project (or GCP_PROJECT), or use credentials that name "
                "one." % self.name
            )
        self.result["changed"] = True
        self.result["actions"].append("create bucket %s in project %s" % (self.name, project))
        self.diff["before"] = dict(exists=False)
        self.diff["after"] = dict(exists=True, **{k: v for k, v in self.desired.items() if v is not None})
        if self.module.check_mode:
            return
        created = bucket_facts(self.service.create(project, self.name, self.desired))
        self.result["bucket"] = created
        self.warn_unapplied(created)

    def warn_unapplied(self, facts):
        unapplied = sorted(compare(facts, self.desired))
        if unapplied:
            self.module.warn(
                "The storage endpoint %s accepted the request for bucket %s but did not apply: %s. Emulators such "
                "as fake-gcs-server store only some bucket properties." % (
                    self.client.endpoints["storage"], self.name, ", ".join(unapplied))
            )

    def absent(self, resource):
        if resource is None:
            self.diff = dict(before=dict(exists=False), after=dict(exists=False))
            return
        self.diff = dict(before=dict(exists=True), after=dict(exists=False))
        versions = self.service.list_object_versions(self.name, limit=None if self.params["force"] else SHOWN_OBJECTS)
        if versions and not self.params["force"]:
            names = sorted({object_name for object_name, _generation in versions})
            raise GcpParameterError(
                "Bucket %s in project %s is not empty (objects include: %s); refusing to delete it. Set force: true "
                "to delete every object version and then the bucket." % (
                    self.name, _project_label(self.client.project), ", ".join(names))
            )
        self.result["changed"] = True
        self.result["objects_deleted"] = len(versions)
        if versions:
            self.result["actions"].append("delete %d object versions" % len(versions))
        self.result["actions"].append("delete bucket %s" % self.name)
        if self.module.check_mode:
            return
        for object_name, generation in versions:
            self.service.delete_object_version(self.name, object_name, generation)
        self.service.delete(self.name)
