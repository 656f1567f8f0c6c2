#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_identity
short_description: Bind a Kubernetes ServiceAccount to a GCP service account with GKE Workload Identity
version_added: 0.1.0
description:
  - Ensures that the member C(serviceAccount:WORKLOAD_POOL[NAMESPACE/KSA]) has C(roles/iam.workloadIdentityUser) on
    the IAM policy of a GCP service account (GSA), so that pods running as that Kubernetes ServiceAccount (KSA) act
    as the GSA.
  - Reads the policy with C(getIamPolicy) (policy version 3) and writes it with C(setIamPolicy), passing the etag it
    read. When another writer changed the policy in between, IAM answers 409 and the module reads and edits the
    policy again, up to O(conflict_retries) times, so no one else's binding is lost.
  - Writes nothing when the binding is already there. O(state=absent) removes only this member; other members,
    other roles and conditional bindings of the same role are kept.
  - Optionally creates the GSA when it is missing (O(create_service_account)).
  - Optionally annotates the KSA with C(iam.gke.io/gcp-service-account) through the Kubernetes API
    (O(annotate_ksa)). A missing KSA fails the task before any change unless O(create_ksa=true).
author:
  - stream_processing.gke maintainers (@stream-processing)
extends_documentation_fragment:
  - stream_processing.gke.gcp
  - stream_processing.gke.gcp.iam
  - stream_processing.gke.gcp.kubernetes
  - stream_processing.gke.gcp.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the GSA, its policy and the KSA, and reports what would change.
  diff_mode:
    support: full
    details:
      - The diff shows whether the GSA exists, the members of C(roles/iam.workloadIdentityUser) and the KSA
        annotation, before and after.
  idempotent:
    support: full
options:
  gcp_service_account:
    description:
      - The GCP service account, as its email (V(checkpoint-writer@acme-prod.iam.gserviceaccount.com)) or its
        account ID (V(checkpoint-writer)), which is combined with O(project).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Kubernetes ServiceAccount.
    type: str
    required: true
  kubernetes_service_account:
    description:
      - Name of the Kubernetes ServiceAccount.
    type: str
    required: true
    aliases: [ksa]
  workload_pool:
    description:
      - The workload identity pool of the GKE cluster.
      - Defaults to C(PROJECT.svc.id.goog), with O(project) or, when that is not set, the project of the GSA email.
    type: str
  state:
    description:
      - V(present) adds the member to the role binding; V(absent) removes only that member.
      - With O(annotate_ksa=true) and O(state=absent), the annotation is removed only when it names this GSA.
      - O(state=absent) never deletes the GSA or the KSA.
    type: str
    choices: [present, absent]
    default: present
  create_service_account:
    description:
      - Create the GSA when it does not exist. Without it, a missing GSA fails the task.
    type: bool
    default: false
  display_name:
    description:
      - Display name given to a GSA that the module creates.
    type: str
  description:
    description:
      - Description given to a GSA that the module creates.
    type: str
  annotate_ksa:
    description:
      - Also set the annotation C(iam.gke.io/gcp-service-account) on the KSA through the Kubernetes API.
    type: bool
    default: false
  create_ksa:
    description:
      - With O(annotate_ksa=true), create the KSA when it does not exist. Without it, a missing KSA fails the task
        before any change.
    type: bool
    default: false
  conflict_retries:
    description:
      - How many times to re-read and re-write the policy after a 409 conflict caused by a concurrent change.
    type: int
    default: 5
seealso:
  - name: Use Workload Identity (GKE documentation)
    description: How GKE maps a Kubernetes ServiceAccount to a GCP service account.
    link: https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
"""

EXAMPLES = r"""
- name: Let the TaskManagers act as the checkpoint writer
  stream_processing.gke.workload_identity:
    project: acme-prod
    gcp_service_account: checkpoint-writer
    create_service_account: true
    display_name: Stream processing checkpoint writer
    namespace: stream-processing
    kubernetes_service_account: stream-processing-sa
    annotate_ksa: true
    kubeconfig: ~/.kube/acme-prod.yaml

- name: Remove the binding again (the GSA and the KSA stay)
  stream_processing.gke.workload_identity:
    gcp_service_account: checkpoint-writer@acme-prod.iam.gserviceaccount.com
    namespace: stream-processing
    kubernetes_service_account: stream-processing-sa
    state: absent
"""

RETURN = r"""
gcp_service_account:
  description: Email of the GCP service account.
  returned: always
  type: str
  sample: checkpoint-writer@acme-prod.iam.gserviceaccount.com
member:
  description: The IAM member of the Kubernetes ServiceAccount.
  returned: always
  type: str
  sample: "serviceAccount:acme-prod.svc.id.goog[stream-processing/stream-processing-sa]"
role:
  description: The role the member is bound to.
  returned: always
  type: str
  sample: roles/iam.workloadIdentityUser
workload_pool:
  description: The workload identity pool used in RV(member).
  returned: always
  type: str
  sample: acme-prod.svc.id.goog
members:
  description:
    - Members of the unconditional C(roles/iam.workloadIdentityUser) binding after the task (predicted in check mode).
  returned: when the GSA exists or is created
  type: list
  elements: str
  sample: ["serviceAccount:acme-prod.svc.id.goog[stream-processing/stream-processing-sa]"]
service_account_created:
  description: Whether the GSA was created (or would be, in check mode).
  returned: always
  type: bool
  sample: false
binding_changed:
  description: Whether the IAM policy was written (or would be, in check mode).
  returned: always
  type: bool
  sample: true
conflict_retries:
  description: How many times a write was rejected with 409 because of a concurrent change, and the policy re-read.
  returned: always
  type: int
  sample: 0
kubernetes_service_account:
  description: The KSA and its annotation after the task, with O(annotate_ksa=true).
  returned: when O(annotate_ksa=true)
  type: dict
  contains:
    namespace:
      description: Namespace of the KSA.
      type: str
      sample: stream-processing
    name:
      description: Name of the KSA.
      type: str
      sample: stream-processing-sa
    annotation:
      description: Value of C(iam.gke.io/gcp-service-account), V(null) when not set.
      type: str
      sample: checkpoint-writer@acme-prod.iam.gserviceaccount.com
    created:
      description: Whether the KSA was created.
      type: bool
      sample: false
    annotation_changed:
      description: Whether the annotation was set, changed or removed.
      type: bool
      sample: true
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - "add serviceAccount:acme-prod.svc.id.goog[stream-processing/stream-processing-sa] to
      roles/iam.workloadIdentityUser"
diff:
  description: GSA existence, the role's members and the KSA annotation before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample:
    before:
      gcp_service_account_exists: true
      workload_identity_users: []
    after:
      gcp_service_account_exists: true
      workload_identity_users:
        - "serviceAccount:acme-prod.svc.id.goog[stream-processing/stream-processing-sa]"
"""

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GCP_IAM_ARG_SPEC,
    gcp_module,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_kubernetes_sa import KUBERNETES_AUTH_ARG_SPEC
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_workload_identity import (
    WorkloadIdentityManager,
)


def main():
    module = gcp_module(
        GCP_IAM_ARG_SPEC,
        KUBERNETES_AUTH_ARG_SPEC,
        dict(
            gcp_service_account=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            kubernetes_service_account=dict(type="str", required=True, aliases=["ksa"]),
            workload_pool=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            create_service_account=dict(type="bool", default=False),
            display_name=dict(type="str"),
            description=dict(type="str"),
            annotate_ksa=dict(type="bool", default=False),
            create_ksa=dict(type="bool", default=False),
            conflict_retries=dict(type="int", default=5),
        ),
    )
    WorkloadIdentityManager(module).run()


if __name__ == "__main__":
    main()
