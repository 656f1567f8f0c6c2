# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# The analysis runs on the controller in plugins/action/platform_preflight.py; this file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: platform_preflight
short_description: Check the platform settings as a whole before anything is applied
version_added: 0.1.0
description:
  - Analyses every C(platform_*) setting of the stream_processing.gke roles together, plus what is known about
    the live cluster, and fails with one message per problem, each naming the variable and what is wrong.
  - Checks that each PodDisruptionBudget's minAvailable is below the replicas it covers (the HPA minimum for
    the JobManager, the node count for a TaskManager DaemonSet), so nodes can be drained.
  - Checks HPA minimum <= maximum and HPA minimum > the JobManager PDB's minAvailable.
  - Sums requests and limits of every workload at maximum scale (HPA maximum, DaemonSet on every node,
    the Cloud SQL Auth Proxy sidecar in cloudsql mode) and checks them, the pod count, the PVC count and
    PVC storage x replicas against C(platform_resource_quota).
  - Checks each container's requests and limits against the C(platform_limit_range) min and max, and that
    every preset exists and has requests <= limits.
  - Checks that C(platform_storage_class), when set, is a StorageClass of the cluster.
  - Checks that required pod anti-affinity has at least as many nodes as replicas, against the live node count.
  - Checks that the cluster serves policy/v1, autoscaling/v2 (with the HPA), networking.k8s.io/v1, apps/v1 and
    rbac.authorization.k8s.io/v1, and warns when no metrics.k8s.io API serves the HPA.
  - On GKE, checks that project, region, cluster and bucket are set, the Workload Identity service account is
    an e-mail, and fails when the bucket check reported a missing bucket.
  - Runs on the controller; it never changes anything.
author:
  - stream_processing.gke maintainers (@stream-processing)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
options:
  settings:
    description:
      - The settings to analyse, keyed by variable name (C(platform_jobmanager_replicas) and so on).
      - When omitted, every variable of the task whose name starts with C(platform_) is templated and used.
    type: dict
  overrides:
    description:
      - Settings that replace those of O(settings) (or of the task variables) for this analysis only.
      - Answers "would this change pass?" without editing the inventory.
    type: dict
    default: {}
  cluster:
    description:
      - What the caller learned from the live cluster. Checks that need a missing fact are reported as warnings.
    type: dict
    default: {}
    suboptions:
      reachable:
        description: Whether the Kubernetes API answered.
        type: bool
        default: false
      node_count:
        description:
          - Schedulable nodes (not cordoned).
          - The DaemonSet TaskManager count, and the bound for required anti-affinity.
        type: int
      api_versions:
        description: Served group versions, such as C(v1), C(apps/v1), C(policy/v1), C(metrics.k8s.io/v1beta1).
        type: list
        elements: str
      storage_classes:
        description: Names of the cluster's StorageClasses; O(settings) C(platform_storage_class) must be one of them.
        type: list
        elements: str
      bucket_exists:
        description: Result of the GCS bucket check; omit when it did not run.
        type: bool
  fail_on_warnings:
    description: Treat warnings (checks that could not run, missing metrics API) as errors.
    type: bool
    default: false
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  connection:
    support: none
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  delegation:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: all
notes:
  - Roles add containers or volume claims to their manifests in step with the workload model in
    C(plugins/plugin_utils/platform_consistency.py).
seealso:
  - module: stream_processing.gke.gcs_bucket_info
"""

EXAMPLES = r"""
- name: Analyse the inventory's platform settings with live cluster facts
  stream_processing.gke.platform_preflight:
    cluster:
      reachable: true
      node_count: 3
      api_versions: [v1, apps/v1, policy/v1, autoscaling/v2, networking.k8s.io/v1, rbac.authorization.k8s.io/v1]

- name: Analyse an explicit configuration without a cluster
  stream_processing.gke.platform_preflight:
    settings:
      platform_jobmanager_hpa_enabled: false
      platform_jobmanager_replicas: 2
      platform_jobmanager_pdb_min_available: 1
  register: preflight
"""

RETURN = r"""
msg:
  description: Summary, or the list of problems when the analysis failed.
  returned: always
  type: str
  sample: >-
    Preflight found 1 problem(s) in the configuration; nothing was applied:
    - platform_taskmanager_pdb_min_available (3) must be lower than platform_taskmanager_replicas (3):
    no node could ever be drained
errors:
  description: One message per problem; each names the variable involved.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      platform_jobmanager_hpa_min_replicas (6) must not be above platform_jobmanager_hpa_max_replicas (5):
      the HPA would be rejected
preflight_warnings:
  description: Checks that could not run or that found something risky but workable.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      The cluster serves no metrics.k8s.io/v1beta1 (metrics-server): the JobManager HPA
      (platform_jobmanager_hpa_enabled) will report unknown metrics and never scale
usage:
  description: What the workloads need at maximum scale, per quota resource.
  returned: always
  type: dict
  sample:
    requests.cpu: "7"
    requests.memory: 14Gi
    limits.cpu: "14"
    limits.memory: 28Gi
    pods: "12"
    requests.storage: 390Gi
    persistentvolumeclaims: "6"
workloads:
  description: The workload model the sums were made from.
  returned: always
  type: list
  elements: dict
  sample:
    - name: jobmanager
      kind: Deployment
      replicas: 5
      containers: [jobmanager]
      volume_claims: []
"""
