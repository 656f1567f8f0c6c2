# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""What workload_identity does: the GSA, its IAM binding for a KSA, and the KSA annotation."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_client import (
    GcpConflictError,
    GcpError,
    GcpNotFoundError,
    GcpParameterError,
    backoff_seconds,
    connect,
    failure_details,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_iam_policy import (
    CONDITIONAL_POLICY_VERSION,
    add_member,
    members_of,
    remove_member,
    workload_identity_member,
)
from ansible_collections.stream_processing.gke.plugins.module_utils.gcp_kubernetes_sa import (
    GCP_SERVICE_ACCOUNT_ANNOTATION,
    KubernetesError,
    KubernetesServiceAccounts,
    require_kubernetes,
)

WORKLOAD_IDENTITY_ROLE = "roles/iam.workloadIdentityUser"
ACCOUNT_ID_PATTERN = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
EMAIL_PATTERN = re.compile(r"^([a-z0-9][-a-z0-9]*[a-z0-9])@([a-z0-9][-a-z0-9.:]*[a-z0-9])$")
USER_MANAGED_DOMAIN = ".iam.gserviceaccount.com"
PROJECT_PATTERN = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$|^[a-z][-a-z0-9.]*:[a-z][-a-z0-9]{4,28}[a-z0-9]$")
DNS_LABEL_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
WORKLOAD_POOL_PATTERN = re.compile(r"^[a-z][-a-z0-9.:]*[a-z0-9]\.svc\.id\.goog$")
# A new service account can take a few seconds to become visible to getIamPolicy.
NEW_ACCOUNT_POLICY_ATTEMPTS = 5


class WorkloadIdentityTarget:
    """The validated names a task is about; built from module params without any API call."""

    def __init__(self, params):
        project = params.get("project")
        if project is not None and not PROJECT_PATTERN.match(project):
            raise GcpParameterError("project %r is not a valid project ID (6-30 lowercase letters, digits or "
                                    "hyphens, starting with a letter)" % project)
        account = params["gcp_service_account"]
        if "@" in account:
            match = EMAIL_PATTERN.match(account)
            if not match:
                raise GcpParameterError("gcp_service_account %r is not a service-account email" % account)
            self.account_id, domain = match.groups()
            self.email = account
            self.account_project = domain[: -len(USER_MANAGED_DOMAIN)] if domain.endswith(
                USER_MANAGED_DOMAIN) else project
        else:
            if not project or ":" in project:
                raise GcpParameterError(
                    "gcp_service_account %r is an account ID, so a project is needed to form its email; set project "
                    "(or GCP_PROJECT), or give the full email (always for domain-scoped projects)" % account
                )
            self.account_id, self.account_project = account, project
            self.email = "%s@%s%s" % (account, project, USER_MANAGED_DOMAIN)
        if params.get("create_service_account") and not ACCOUNT_ID_PATTERN.match(self.account_id):
            raise GcpParameterError("Cannot create service account %r: the account ID must be 6-30 lowercase "
                                    "letters, digits or hyphens, starting with a letter" % self.account_id)
        namespace, name = params["namespace"], params["kubernetes_service_account"]
        if len(namespace) > 63 or not DNS_LABEL_PATTERN.match(namespace):
            raise GcpParameterError("namespace %r is not a valid Kubernetes namespace name (RFC 1123 label)"
                                    % namespace)
        if len(name) > 253 or not DNS_SUBDOMAIN_PATTERN.match(name):
            raise GcpParameterError("kubernetes_service_account %r is not a valid ServiceAccount name (RFC 1123 "
                                    "subdomain)" % name)
        self.namespace, self.kubernetes_service_account = namespace, name
        pool_project = project or self.account_project
        derivable = pool_project and ":" not in pool_project
        self.workload_pool = params.get("workload_pool") or ("%s.svc.id.goog" % pool_project if derivable else None)
        if not self.workload_pool:
            raise GcpParameterError("Cannot derive the workload pool for %s (project %s); set workload_pool, or "
                                    "project for a GSA outside .iam.gserviceaccount.com" % (self.email, pool_project))
        if not WORKLOAD_POOL_PATTERN.match(self.workload_pool):
            raise GcpParameterError("workload_pool %r must look like PROJECT_ID.svc.id.goog" % self.workload_pool)
        self.member = workload_identity_member(self.workload_pool, namespace, name)
        if params.get("conflict_retries", 0) < 0:
            raise GcpParameterError("conflict_retries must be 0 or more, got %s" % params["conflict_retries"])


class ServiceAccountIam:
    """IAM v1 calls on one service account."""

    def __init__(self, client, email):
        self.client = client
        self.email = email
        self.resource = "service account %s" % email
        self.base = client.url("iam", "/v1/projects/-/serviceAccounts/%s" % quote(email, safe="@"))

    def get_account(self):
        try:
            return self.client.request("GET", self.base, self.resource)
        except GcpNotFoundError:
            return None

    def create_account(self, project, account_id, display_name, description):
        account = {key: value for key, value in (("displayName", display_name), ("description", description))
                   if value}
        url = self.client.url("iam", "/v1/projects/%s/serviceAccounts" % quote(project, safe=""))
        return self.client.request("POST", url, "project %s" % project,
                                   json_body={"accountId": account_id, "serviceAccount": account})

    def get_policy(self):
        return self.client.request(
            "POST", self.base + ":getIamPolicy", self.resource,
            params={"options.requestedPolicyVersion": CONDITIONAL_POLICY_VERSION}, json_body={},
        )

    def set_policy(self, policy):
        return self.client.request("POST", self.base + ":setIamPolicy", self.resource, json_body={"policy": policy})


class WorkloadIdentityManager:
    """Reads everything first, fails before any change on bad state, then writes outside check mode."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.present = self.params["state"] == "present"
        self.result = dict(changed=False, actions=[], service_account_created=False, binding_changed=False,
                           conflict_retries=0)
        self.diff = dict(before={}, after={})

    def run(self):
        try:
            self.target = WorkloadIdentityTarget(self.params)
            self.result.update(gcp_service_account=self.target.email, member=self.target.member,
                               role=WORKLOAD_IDENTITY_ROLE, workload_pool=self.target.workload_pool)
            self.client = connect(self.module, apis=("iam",))
            kubernetes = self.read_kubernetes_service_account()
            self.iam = ServiceAccountIam(self.client, self.target.email)
            self.reconcile_service_account_and_binding()
            if kubernetes is not None:
                self.reconcile_annotation(*kubernetes)
        except (GcpError, KubernetesError) as exc:
            done = {key: value for key, value in self.result.items() if key != "changed"}
            self.module.fail_json(msg=str(exc), changed=bool(self.result["actions"]) and not self.module.check_mode,
                                  **dict(done, **failure_details(exc)))
        self.result["changed"] = bool(self.result["actions"])
        if self.module._diff:
            self.result["diff"] = self.diff
        self.module.exit_json(**self.result)

    def read_kubernetes_service_account(self):
        """(api, annotations or None) when annotate_ksa, read before any GCP change so a missing KSA fails early."""
        if not self.params["annotate_ksa"]:
            return None
        require_kubernetes(self.module)
        api = KubernetesServiceAccounts(self.params["kubeconfig"], self.params["context"])
        annotations = api.annotations(self.target.namespace, self.target.kubernetes_service_account)
        if annotations is None and self.present and not self.params["create_ksa"]:
            raise KubernetesError(
                "Kubernetes ServiceAccount %s/%s does not exist, so it cannot be annotated with %s=%s. Create it "
                "first (for example with kubernetes.core.k8s) or set create_ksa: true. Nothing was changed."
                % (self.target.namespace, self.target.kubernetes_service_account, GCP_SERVICE_ACCOUNT_ANNOTATION,
                   self.target.email)
            )
        return api, annotations

    def reconcile_service_account_and_binding(self):
        account = self.iam.get_account()
        self.diff["before"]["gcp_service_account_exists"] = account is not None
        self.diff["after"]["gcp_service_account_exists"] = account is not None or self.present
        if account is None:
            self.diff["before"]["workload_identity_users"] = []
            if not self.present:
                self.diff["after"]["workload_identity_users"] = []
                return
            if not self.params["create_service_account"]:
                raise GcpNotFoundError(
                    "GCP service account %s does not exist (project %s). Create it or set create_service_account: "
                    "true. Nothing was changed." % (self.target.email, self.target.account_project or "unknown")
                )
            self.create_service_account()
            if self.module.check_mode:
                self.result["binding_changed"] = True
                self.result["actions"].append(self.binding_action())
                self.result["members"] = [self.target.member]
                self.diff["after"]["workload_identity_users"] = [self.target.member]
                return
        self.reconcile_binding(new_account=account is None)

    def binding_action(self):
        if self.present:
            return "add %s to %s" % (self.target.member, WORKLOAD_IDENTITY_ROLE)
        return "remove %s from %s" % (self.target.member, WORKLOAD_IDENTITY_ROLE)

    def create_service_account(self):
        project = self.target.account_project
        if not project:
            raise GcpParameterError("Set project to create service account %s" % self.target.email)
        if not self.module.check_mode:
            try:
                self.iam.create_account(project, self.target.account_id, self.params["display_name"],
                                        self.params["description"])
            except GcpConflictError:
                # Created by someone else since the read: use it.
                return
        self.result["service_account_created"] = True
        self.result["actions"].append("create GCP service account %s" % self.target.email)

    def read_policy(self, new_account):
        attempts = NEW_ACCOUNT_POLICY_ATTEMPTS if new_account else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.iam.get_policy()
            except GcpNotFoundError:
                if attempt == attempts:
                    raise
                time.sleep(backoff_seconds(attempt))

    def reconcile_binding(self, new_account):
        edit = add_member if self.present else remove_member
        limit = self.params["conflict_retries"]
        attempt = 0
        while True:
            policy = self.read_policy(new_account)
            if attempt == 0:
                self.diff["before"]["workload_identity_users"] = members_of(policy, WORKLOAD_IDENTITY_ROLE)
            wanted, changed = edit(policy, WORKLOAD_IDENTITY_ROLE, self.target.member)
            self.result["members"] = members_of(wanted, WORKLOAD_IDENTITY_ROLE)
            self.diff["after"]["workload_identity_users"] = self.result["members"]
            if not changed:
                return
            if not self.module.check_mode:
                try:
                    written = self.iam.set_policy(wanted)
                except GcpConflictError as exc:
                    attempt += 1
                    self.result["conflict_retries"] = attempt
                    if attempt > limit:
                        raise GcpConflictError(
                            "The IAM policy of %s changed concurrently %d times in a row; gave up after %d writes, "
                            "each rejected by its etag, so nothing was overwritten. Retry later or raise "
                            "conflict_retries. (%s)" % (self.target.email, attempt, attempt, exc), exc.status,
                            exc.reason,
                        ) from None
                    time.sleep(backoff_seconds(attempt))
                    continue
                self.result["members"] = members_of(written, WORKLOAD_IDENTITY_ROLE)
            self.result["binding_changed"] = True
            self.result["actions"].append(self.binding_action())
            return

    def reconcile_annotation(self, api, annotations):
        namespace, name = self.target.namespace, self.target.kubernetes_service_account
        current = None if annotations is None else annotations.get(GCP_SERVICE_ACCOUNT_ANNOTATION)
        report = dict(namespace=namespace, name=name, created=False, annotation_changed=False, annotation=current)
        self.result["kubernetes_service_account"] = report
        self.diff["before"]["ksa_annotation"] = current
        # absent removes only an annotation that points at this GSA; another binding is not ours to undo.
        wanted = self.target.email if self.present else (None if current == self.target.email else current)
        self.diff["after"]["ksa_annotation"] = wanted
        report["annotation"] = wanted
        if annotations is None:
            if not self.present:
                return
            if not self.module.check_mode:
                api.create(namespace, name, {GCP_SERVICE_ACCOUNT_ANNOTATION: wanted})
            report["created"] = report["annotation_changed"] = True
            self.result["actions"].append("create Kubernetes ServiceAccount %s/%s annotated with %s"
                                          % (namespace, name, wanted))
            return
        if current == wanted:
            return
        if not self.module.check_mode:
            api.set_annotation(namespace, name, GCP_SERVICE_ACCOUNT_ANNOTATION, wanted)
        report["annotation_changed"] = True
        self.result["actions"].append("%s annotation %s on %s/%s" % (
            "set" if wanted else "remove", GCP_SERVICE_ACCOUNT_ANNOTATION, namespace, name))
