#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gcs_bucket_info
short_description: Report whether a Cloud Storage bucket exists, its properties and the caller's object access
version_added: 0.1.0
description:
  - Reads a Google Cloud Storage bucket and reports whether it exists, its location, default storage class,
    versioning, uniform bucket-level access, retention policy, labels and lifecycle rules.
  - Asks C(testIamPermissions) whether the calling identity may create, read, list and delete objects in it.
  - A missing bucket is not a failure. The module returns RV(exists=false) and, with O(warn_if_missing=true), a
    warning that names the bucket and the project.
author:
  - stream_processing.gke maintainers (@stream-processing)
extends_documentation_fragment:
  - stream_processing.gke.gcp
  - stream_processing.gke.gcp.storage
  - stream_processing.gke.gcp.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads.
  diff_mode:
    support: N/A
    details:
      - The module only reads.
  idempotent:
    support: full
    details:
      - The module only reads.
options:
  name:
    description:
      - Name of the bucket.
    type: str
    required: true
  warn_if_missing:
    description:
      - Emit a warning naming the bucket and the project when the bucket does not exist.
    type: bool
    default: true
  permissions:
    description:
      - Permissions to test for the calling identity with C(testIamPermissions).
      - An empty list skips the test.
      - When the storage endpoint does not implement C(testIamPermissions), as with emulators, RV(permissions) is
        V(null) and a warning says so.
    type: list
    elements: str
    default: [storage.objects.create, storage.objects.get, storage.objects.list, storage.objects.delete]
seealso:
  - module: stream_processing.gke.gcs_bucket
"""

EXAMPLES = r"""
- name: Check the checkpoint bucket before deploying
  stream_processing.gke.gcs_bucket_info:
    name: acme-stream-checkpoints
    project: acme-prod
  register: checkpoint_bucket

- name: Stop when the TaskManagers could not write checkpoints
  ansible.builtin.assert:
    that:
      - checkpoint_bucket.exists
      - checkpoint_bucket.can_write_objects is not false
    fail_msg: The checkpoint bucket is missing or not writable by this identity

- name: Read a bucket on a local fake-gcs-server
  stream_processing.gke.gcs_bucket_info:
    name: checkpoints
    project: test-project
    auth_kind: anonymous
    storage_endpoint: http://127.0.0.1:4443
"""

RETURN = r"""
exists:
  description: Whether the bucket exists.
  returned: always
  type: bool
  sample: true
project:
  description: The project the module used, from O(project) or the credentials; V(null) when neither names one.
  returned: always
  type: str
  sample: acme-prod
bucket:
  description: Properties of the bucket; empty when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Bucket name.
      type: str
      sample: acme-stream-checkpoints
    location:
      description: Location, upper case.
      type: str
      sample: EUROPE-WEST1
    location_type:
      description: C(region), C(dual-region) or C(multi-region).
      type: str
      sample: region
    storage_class:
      description: Default storage class of new objects.
      type: str
      sample: STANDARD
    versioning:
      description: Whether object versioning is enabled.
      type: bool
      sample: true
    uniform_bucket_level_access:
      description: Whether uniform bucket-level access is enabled.
      type: bool
      sample: true
    retention_policy:
      description: The retention policy, or V(null) when there is none.
      type: dict
      sample: {retention_period: 86400, is_locked: false, effective_time: "2026-01-01T00:00:00.000Z"}
    labels:
      description: Bucket labels.
      type: dict
      sample: {app: stream-processing}
    lifecycle_rules:
      description: Lifecycle rules as in the Cloud Storage JSON API.
      type: list
      elements: dict
      sample: [{action: {type: Delete}, condition: {age: 30}}]
    time_created:
      description: Creation time, RFC 3339.
      type: str
      sample: "2026-01-01T00:00:00.000Z"
    project_number:
      description: Number of the project that owns the bucket.
      type: str
      sample: "123456789012"
permissions:
  description:
    - For each permission in O(permissions), whether the calling identity holds it on the bucket.
    - V(null) when the bucket does not exist, when O(permissions) is empty, or when the endpoint does not implement
      C(testIamPermissions).
  returned: always
  type: dict
  sample: {storage.objects.create: true, storage.objects.get: true, storage.objects.list: true,
           storage.objects.delete: false}
can_read_objects:
  description:
    - Whether the caller holds C(storage.objects.get) and C(storage.objects.list).
    - V(null) when unknown (see RV(permissions)) or when those permissions were not tested.
  returned: always
  type: bool
  sample: true
can_write_objects:
  description:
    - Whether the caller holds C(storage.objects.create) and C(storage.objects.delete).
    - V(null) when unknown (see RV(permissions)) or when those permissions were not tested.
  returned: always
  type: bool
  sample: false
"""

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_bucket_manager import run_bucket_info
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GCP_STORAGE_ARG_SPEC,
    gcp_module,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_storage_buckets import OBJECT_PERMISSIONS


def main():
    module = gcp_module(
        GCP_STORAGE_ARG_SPEC,
        dict(
            name=dict(type="str", required=True),
            warn_if_missing=dict(type="bool", default=True),
            permissions=dict(type="list", elements="str", default=OBJECT_PERMISSIONS),
        ),
    )
    run_bucket_info(module)


if __name__ == "__main__":
    main()
