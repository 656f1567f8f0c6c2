# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""The Kubernetes ServiceAccount side of Workload Identity: read, create and annotate a KSA."""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    from kubernetes import client as kubernetes_client
    from kubernetes import config as kubernetes_config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

# Documented in plugins/doc_fragments/gcp.py (KUBERNETES); names and env variables as in kubernetes.core.
KUBERNETES_AUTH_ARG_SPEC = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
)
GCP_SERVICE_ACCOUNT_ANNOTATION = "iam.gke.io/gcp-service-account"


class KubernetesError(Exception):
    """A Kubernetes API call failed; str(error) is the message shown to the user."""


def require_kubernetes(module):
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)


class KubernetesServiceAccounts:
    """ServiceAccount reads and writes through the Kubernetes Python client."""

    def __init__(self, kubeconfig=None, context=None):
        try:
            if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                self.api_client = kubernetes_config.new_client_from_config(config_file=kubeconfig, context=context)
            else:
                configuration = kubernetes_client.Configuration()
                kubernetes_config.load_incluster_config(client_configuration=configuration)
                self.api_client = kubernetes_client.ApiClient(configuration)
        except (ConfigException, OSError) as exc:
            raise KubernetesError(
                "Could not load the Kubernetes configuration (kubeconfig %s, context %s): %s. Set kubeconfig and "
                "context, or K8S_AUTH_KUBECONFIG and K8S_AUTH_CONTEXT."
                % (kubeconfig or "default", context or "current", str(exc).rstrip("."))
            ) from None
        self.core = kubernetes_client.CoreV1Api(self.api_client)

    def _call(self, verb, namespace, name, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and verb == "get":
                return None
            hint = ""
            if exc.status in (401, 403):
                hint = (" The Kubernetes identity needs RBAC permission to %s serviceaccounts in namespace %s."
                        % (verb, namespace))
            raise KubernetesError(
                "Kubernetes API refused to %s ServiceAccount %s/%s: HTTP %s %s.%s"
                % (verb, namespace, name, exc.status, exc.reason, hint)
            ) from None
        except Urllib3HTTPError as exc:
            raise KubernetesError(
                "Could not reach the Kubernetes API to %s ServiceAccount %s/%s: %s" % (verb, namespace, name, exc)
            ) from None

    def annotations(self, namespace, name):
        """The annotations of the ServiceAccount, or None when it does not exist."""
        account = self._call("get", namespace, name, self.core.read_namespaced_service_account, name, namespace)
        if account is None:
            return None
        return dict(account.metadata.annotations or {})

    def create(self, namespace, name, annotations):
        body = kubernetes_client.V1ServiceAccount(
            metadata=kubernetes_client.V1ObjectMeta(name=name, namespace=namespace, annotations=annotations)
        )
        self._call("create", namespace, name, self.core.create_namespaced_service_account, namespace, body)

    def set_annotation(self, namespace, name, key, value):
        """Set (or, with value None, remove) one annotation with a merge patch."""
        body = {"metadata": {"annotations": {key: value}}}
        # The client would otherwise pick application/json-patch+json, which needs a list of operations.
        self._call("patch", namespace, name, self.core.patch_namespaced_service_account, name, namespace, body,
                   _content_type="application/merge-patch+json")
