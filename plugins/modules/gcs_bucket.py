#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gcs_bucket
short_description: Create, update or delete a Cloud Storage bucket, with check and diff mode
version_added: 0.1.0
description:
  - Creates a Google Cloud Storage bucket, or brings the properties of an existing one into line with the task.
  - Properties left unset are not managed; an existing bucket keeps whatever value it has.
  - Deletes a bucket with O(state=absent), and refuses to delete a bucket that holds objects unless O(force=true).
  - Every check, including the refusals, happens before any change, so a failing task changes nothing.
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
      - Reads the bucket (and, for O(state=absent), its objects) and reports what would change.
  diff_mode:
    support: full
    details:
      - The diff shows the managed properties before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the bucket.
    type: str
    required: true
  state:
    description:
      - V(present) creates the bucket or updates its properties.
      - V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - Location of the bucket, for example V(EUROPE-WEST1) or V(EU). Compared without regard to case.
      - The location of an existing bucket cannot change; a different value fails before any change.
      - When creating without a location, Cloud Storage uses its default (V(US)).
    type: str
  storage_class:
    description:
      - Default storage class of new objects.
    type: str
    choices: [STANDARD, NEARLINE, COLDLINE, ARCHIVE]
  versioning:
    description:
      - Whether object versioning is enabled.
    type: bool
  uniform_bucket_level_access:
    description:
      - Whether uniform bucket-level access is enabled (IAM only, no object ACLs).
    type: bool
  retention_period:
    description:
      - Retention period in seconds; V(0) removes the retention policy.
      - A locked retention policy cannot be removed or shortened; asking for it fails before any change.
    type: int
  labels:
    description:
      - The complete set of labels. Labels of the bucket that are not listed are removed.
      - Keys start with a lowercase letter; keys and values hold up to 63 lowercase ASCII letters, digits, C(_)
        or C(-).
    type: dict
  lifecycle_rules:
    description:
      - The complete list of lifecycle rules, each with C(action) and C(condition) as in the Cloud Storage JSON API.
      - An empty list removes all rules.
    type: list
    elements: dict
  force:
    description:
      - With O(state=absent), delete every object and every noncurrent object version first.
      - Without it, a bucket that holds objects is not deleted and the task fails, naming some of them.
    type: bool
    default: false
notes:
  - C(fake-gcs-server) stores only the versioning of a bucket. Other properties sent to it are not applied, and the
    module warns about each one that the endpoint did not apply.
seealso:
  - module: stream_processing.gke.gcs_bucket_info
"""

EXAMPLES = r"""
- name: Ensure the checkpoint bucket exists with versioning and a 30-day cleanup
  stream_processing.gke.gcs_bucket:
    name: acme-stream-checkpoints
    project: acme-prod
    location: EUROPE-WEST1
    storage_class: STANDARD
    versioning: true
    uniform_bucket_level_access: true
    labels:
      app: stream-processing
    lifecycle_rules:
      - action:
          type: Delete
        condition:
          age: 30

- name: Delete a scratch bucket and everything in it
  stream_processing.gke.gcs_bucket:
    name: acme-stream-scratch
    project: acme-dev
    state: absent
    force: true
"""

RETURN = r"""
name:
  description: Name of the bucket.
  returned: always
  type: str
  sample: acme-stream-checkpoints
project:
  description: The project the module used, from O(project) or the credentials.
  returned: success
  type: str
  sample: acme-prod
bucket:
  description:
    - Properties of the bucket after the task; the same keys as RV(stream_processing.gke.gcs_bucket_info#module:bucket).
    - In check mode, the properties as they are now. Empty when the bucket does not exist.
  returned: always
  type: dict
  sample: {name: acme-stream-checkpoints, location: EUROPE-WEST1, location_type: region, storage_class: STANDARD,
           versioning: true, uniform_bucket_level_access: true, retention_policy: null,
           labels: {app: stream-processing}, lifecycle_rules: [], time_created: "2026-01-01T00:00:00.000Z",
           project_number: "123456789012"}
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["update labels, versioning"]
objects_deleted:
  description: Number of object versions deleted (or that would be deleted in check mode) with O(state=absent).
  returned: when a bucket was deleted
  type: int
  sample: 3
diff:
  description: The managed properties before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {before: {exists: true, versioning: false}, after: {exists: true, versioning: true}}
"""

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_bucket_manager import BucketManager
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GCP_STORAGE_ARG_SPEC,
    gcp_module,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_storage_buckets import STORAGE_CLASSES


def main():
    module = gcp_module(
        GCP_STORAGE_ARG_SPEC,
        dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            location=dict(type="str"),
            storage_class=dict(type="str", choices=STORAGE_CLASSES),
            versioning=dict(type="bool"),
            uniform_bucket_level_access=dict(type="bool"),
            retention_period=dict(type="int"),
            labels=dict(type="dict"),
            lifecycle_rules=dict(type="list", elements="dict"),
            force=dict(type="bool", default=False),
        ),
    )
    BucketManager(module).run()


if __name__ == "__main__":
    main()
