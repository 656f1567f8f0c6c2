# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by the GCP modules; each fragment mirrors an argument spec in module_utils."""

    # Mirrors GCP_AUTH_ARG_SPEC in plugins/module_utils/gcp_client.py.
    DOCUMENTATION = r"""
options:
  project:
    description:
      - The Google Cloud project ID.
      - When not set, the project of the Application Default Credentials or of the service-account key is used.
      - Falls back to the E(GCP_PROJECT) environment variable.
    type: str
  auth_kind:
    description:
      - How the module authenticates.
      - V(application) uses Application Default Credentials. This covers Workload Identity when the module runs in a
        GKE pod, C(gcloud auth application-default login) on a workstation and E(GOOGLE_APPLICATION_CREDENTIALS).
      - V(serviceaccount) uses a service-account key from O(service_account_file) or O(service_account_contents).
      - V(accesstoken) uses the OAuth 2 access token in O(access_token).
      - V(anonymous) sends no credentials. It is meant for emulators and test servers only, and is accepted only when
        every endpoint the module talks to is overridden (C(storage_endpoint) or C(iam_endpoint)).
      - Falls back to the E(GCP_AUTH_KIND) environment variable.
    type: str
    choices: [application, serviceaccount, accesstoken, anonymous]
    default: application
  service_account_file:
    description:
      - Path to a service-account JSON key file, for O(auth_kind=serviceaccount).
      - Falls back to the E(GCP_SERVICE_ACCOUNT_FILE) environment variable.
      - Mutually exclusive with O(service_account_contents).
    type: path
  service_account_contents:
    description:
      - The contents of a service-account JSON key, for O(auth_kind=serviceaccount).
      - Falls back to the E(GCP_SERVICE_ACCOUNT_CONTENTS) environment variable.
      - Mutually exclusive with O(service_account_file).
    type: jsonarg
  access_token:
    description:
      - An OAuth 2 access token, for O(auth_kind=accesstoken). It is not refreshed; an expired token fails with an
        invalid-credentials error.
      - Falls back to the E(GCP_ACCESS_TOKEN) environment variable.
    type: str
  scopes:
    description:
      - OAuth scopes requested for the credentials.
      - Falls back to the E(GCP_SCOPES) environment variable (comma-separated).
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/cloud-platform']
notes:
  - Calls are retried with exponential backoff on HTTP 429 and 5xx responses.
  - Errors are reported so that they can be told apart, each with what to do next. A missing resource (404), a
    missing permission (403, naming the permission and the calling identity), an API that is not enabled for the
    project, and credentials that are invalid or expired (401) each have their own message.
requirements:
  - python >= 3.9
  - google-auth
  - requests
"""

    # Mirrors GCP_STORAGE_ARG_SPEC in plugins/module_utils/gcp_client.py.
    STORAGE = r"""
options:
  storage_endpoint:
    description:
      - Base URL of the Cloud Storage JSON API, without the C(/storage/v1) path, for example
        V(http://127.0.0.1:4443) for C(fake-gcs-server).
      - Falls back to the E(GCP_STORAGE_ENDPOINT) and then the E(STORAGE_EMULATOR_HOST) environment variables.
      - When not set, the public Cloud Storage endpoint is used.
    type: str
"""

    # Mirrors GCP_IAM_ARG_SPEC in plugins/module_utils/gcp_client.py.
    IAM = r"""
options:
  iam_endpoint:
    description:
      - Base URL of the IAM API, without the C(/v1) path, for example V(http://127.0.0.1:8085) for a test server.
      - Falls back to the E(GCP_IAM_ENDPOINT) environment variable.
      - When not set, the public IAM endpoint is used.
    type: str
"""

    # Mirrors KUBERNETES_AUTH_ARG_SPEC in plugins/module_utils/gcp_kubernetes_sa.py (names as in kubernetes.core).
    KUBERNETES = r"""
options:
  kubeconfig:
    description:
      - Path to the kubeconfig file used to reach the Kubernetes API.
      - Falls back to the E(K8S_AUTH_KUBECONFIG) environment variable, then to E(KUBECONFIG) and C(~/.kube/config).
        Inside a pod with no kubeconfig, the in-cluster service-account configuration is used.
    type: path
  context:
    description:
      - The name of a context in the kubeconfig file.
      - Falls back to the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
"""

    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without modifying the target.
  diff_mode:
    description: Returns details on what has changed, or would change in check mode, when run in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that nothing else changed the target in between.
"""
