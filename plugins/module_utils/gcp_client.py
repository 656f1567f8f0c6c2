# -*- coding: utf-8 -*-
# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE), or at your option the GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Authentication, retries and error translation shared by the GCP modules."""

from __future__ import annotations

import json
import random
import re
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import google.auth
    import requests
    from google.auth import exceptions as google_auth_exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import credentials as oauth2_credentials
    from google.oauth2 import service_account
except ImportError:
    HAS_GOOGLE_AUTH = False
    GOOGLE_AUTH_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_GOOGLE_AUTH = True
    GOOGLE_AUTH_IMPORT_ERROR = None

DEFAULT_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DEFAULT_ENDPOINTS = {
    "storage": "https://storage.googleapis.com",
    "iam": "https://iam.googleapis.com",
}
ENDPOINT_OPTIONS = {"storage": "storage_endpoint", "iam": "iam_endpoint"}

# Documented in plugins/doc_fragments/gcp.py (DOCUMENTATION).
GCP_AUTH_ARG_SPEC = dict(
    project=dict(type="str", fallback=(env_fallback, ["GCP_PROJECT"])),
    auth_kind=dict(
        type="str",
        default="application",
        choices=["application", "serviceaccount", "accesstoken", "anonymous"],
        fallback=(env_fallback, ["GCP_AUTH_KIND"]),
    ),
    service_account_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE"])),
    service_account_contents=dict(
        type="jsonarg", no_log=True, fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_CONTENTS"])
    ),
    access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["GCP_ACCESS_TOKEN"])),
    scopes=dict(type="list", elements="str", default=DEFAULT_SCOPES, fallback=(env_fallback, ["GCP_SCOPES"])),
)
# Documented in plugins/doc_fragments/gcp.py (STORAGE).
GCP_STORAGE_ARG_SPEC = dict(
    storage_endpoint=dict(type="str", fallback=(env_fallback, ["GCP_STORAGE_ENDPOINT", "STORAGE_EMULATOR_HOST"])),
)
# Documented in plugins/doc_fragments/gcp.py (IAM).
GCP_IAM_ARG_SPEC = dict(
    iam_endpoint=dict(type="str", fallback=(env_fallback, ["GCP_IAM_ENDPOINT"])),
)
GCP_AUTH_MUTUALLY_EXCLUSIVE = [("service_account_file", "service_account_contents")]
GCP_AUTH_REQUIRED_IF = [
    ("auth_kind", "serviceaccount", ("service_account_file", "service_account_contents"), True),
    ("auth_kind", "accesstoken", ("access_token",)),
]

RETRYABLE_STATUS = frozenset((429, 500, 502, 503, 504))
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 16.0
REQUEST_TIMEOUT_SECONDS = 60


class GcpError(Exception):
    """A GCP call failed; str(error) is the message shown to the user."""

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class GcpNotFoundError(GcpError):
    """HTTP 404: the resource does not exist."""


class GcpPermissionError(GcpError):
    """HTTP 403: the calling identity lacks a permission."""

    def __init__(self, message, status=None, reason=None, permission=None, identity=None):
        super().__init__(message, status, reason)
        self.permission = permission
        self.identity = identity


class GcpApiDisabledError(GcpError):
    """HTTP 403 SERVICE_DISABLED / accessNotConfigured: the API is not enabled for the project."""


class GcpCredentialsError(GcpError):
    """HTTP 401, or credentials that could not be loaded or refreshed."""


class GcpConflictError(GcpError):
    """HTTP 409: a concurrent change (etag mismatch) or a resource that already exists."""


class GcpParameterError(GcpError):
    """The task's options are invalid; raised before any API call."""


def build_argument_spec(*extra_specs):
    """Return the shared auth spec merged with the module's own specs."""
    spec = dict(GCP_AUTH_ARG_SPEC)
    for extra in extra_specs:
        spec.update(extra)
    return spec


def gcp_module(*extra_specs):
    """Build an AnsibleModule from the shared auth options plus the module's own, with check mode."""
    return AnsibleModule(
        argument_spec=build_argument_spec(*extra_specs),
        mutually_exclusive=GCP_AUTH_MUTUALLY_EXCLUSIVE,
        required_if=GCP_AUTH_REQUIRED_IF,
        supports_check_mode=True,
    )


def validate_auth_params(params, apis):
    """Check the auth and endpoint options for the APIs a module uses; raise GcpParameterError."""
    endpoints = {}
    for api in apis:
        option = ENDPOINT_OPTIONS[api]
        value = params.get(option)
        if value:
            if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
                raise GcpParameterError(
                    "%s must be a URL starting with http:// or https://, for example http://127.0.0.1:4443; got %r"
                    % (option, value)
                )
            endpoints[api] = value.rstrip("/")
        else:
            endpoints[api] = DEFAULT_ENDPOINTS[api]
    if params.get("auth_kind") == "anonymous":
        not_overridden = [ENDPOINT_OPTIONS[api] for api in apis if not params.get(ENDPOINT_OPTIONS[api])]
        if not_overridden:
            raise GcpParameterError(
                "auth_kind=anonymous is for emulators and test servers only; set %s to the emulator's URL, "
                "or choose auth_kind application, serviceaccount or accesstoken" % " and ".join(not_overridden)
            )
    contents = params.get("service_account_contents")
    if params.get("auth_kind") == "serviceaccount" and contents:
        # The key itself is never echoed back, only what is wrong with it.
        try:
            info = json.loads(contents)
        except ValueError:
            raise GcpParameterError("service_account_contents is not valid JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise GcpParameterError(
                'service_account_contents must be a service-account key (JSON with "type": "service_account")'
            )
    if not params.get("scopes"):
        raise GcpParameterError("scopes must list at least one OAuth scope")
    return endpoints


def _error_payload(body_text):
    try:
        payload = json.loads(body_text)
    except (TypeError, ValueError):
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _error_info(error):
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return detail
    return {}


def _legacy_reasons(error):
    return [item.get("reason") for item in error.get("errors") or [] if isinstance(item, dict)]


def translate_error(status, body_text, method, url, resource=None, identity=None):
    """Turn an HTTP error response of a Google API into the GcpError subclass a person can act on."""
    error = _error_payload(body_text)
    message = error.get("message") or (body_text or "").strip()[:300] or "no error message"
    status_name = error.get("status") or ""
    info = _error_info(error)
    reason = info.get("reason") or next(iter(_legacy_reasons(error)), None) or status_name or None
    metadata = info.get("metadata") or {}
    target = resource or "%s %s" % (method, url)
    detail = "HTTP %s%s from %s %s: %s" % (status, " " + status_name if status_name else "", method, url, message)

    if info.get("reason") == "SERVICE_DISABLED" or "accessNotConfigured" in _legacy_reasons(error):
        host = re.match(r"https?://([^/:]+)", url)
        service = metadata.get("service") or (host.group(1) if host else "requested")
        consumer = metadata.get("consumer") or "the project"
        project = consumer.split("/", 1)[1] if consumer.startswith("projects/") else consumer
        activation = metadata.get("activationUrl")
        return GcpApiDisabledError(
            "The %s API is not enabled for %s. Enable it with 'gcloud services enable %s --project %s'%s, wait a "
            "few minutes and retry. (%s)"
            % (service, consumer, service, project, " or at " + activation if activation else "", detail),
            status,
            "SERVICE_DISABLED",
        )
    if status == 401:
        return GcpCredentialsError(
            "The credentials of %s were rejected (invalid or expired). Check auth_kind and what it points to: an "
            "expired access_token, a deleted service-account key, or Application Default Credentials of another "
            "account. (%s)" % (identity or "the caller", detail),
            status,
            reason,
        )
    if status == 403:
        permission = metadata.get("permission")
        if not permission:
            found = re.search(r"Permission '([\w.]+)'", message) or re.search(r"does not have ([\w.]+) access", message)
            permission = found.group(1) if found else None
        who = identity
        if not who:
            found = re.match(r"^(\S+@\S+) does not have", message)
            who = found.group(1) if found else "the calling identity"
        if permission:
            text = (
                "Permission denied: %s lacks %s on %s. Grant %s a role that includes %s on that resource (or its "
                "project), or run with an identity that has it." % (who, permission, target, who, permission)
            )
        else:
            text = "Permission denied: %s may not call %s %s on %s." % (who, method, url, target)
        return GcpPermissionError("%s (%s)" % (text, detail), status, reason, permission=permission, identity=who)
    if status == 404:
        return GcpNotFoundError("Not found: %s. (%s)" % (target, detail), status, reason)
    if status == 409:
        return GcpConflictError("Conflict on %s. (%s)" % (target, detail), status, reason)
    return GcpError("Request for %s failed. (%s)" % (target, detail), status, reason)


def failure_details(exc):
    """Extra fail_json keys that let a playbook tell error kinds apart."""
    return dict(http_status=getattr(exc, "status", None), error_reason=getattr(exc, "reason", None))


def backoff_seconds(attempt, retry_after=None):
    """Seconds to wait before retry number `attempt` (1-based): exponential with jitter, capped."""
    if retry_after is not None:
        return min(float(retry_after), BACKOFF_MAX_SECONDS)
    ceiling = min(BACKOFF_BASE_SECONDS * (2 ** (attempt - 1)), BACKOFF_MAX_SECONDS)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_after(response):
    value = response.headers.get("Retry-After")
    return int(value) if value and value.isdigit() else None


def connect(module, apis):
    """Validate the auth options (before anything else can fail), then return a GcpClient for apis."""
    validate_auth_params(module.params, apis)
    if not HAS_GOOGLE_AUTH:
        module.fail_json(msg=missing_required_lib("google-auth and requests"), exception=GOOGLE_AUTH_IMPORT_ERROR)
    return GcpClient(module.params, apis)


class GcpClient:
    """An authorised HTTP session against Google JSON APIs, with retries and translated errors."""

    def __init__(self, params, apis):
        self.endpoints = validate_auth_params(params, apis)
        self.auth_kind = params["auth_kind"]
        self.credentials, credentials_project = self._load_credentials(params)
        self.project = params.get("project") or credentials_project
        # A token or anonymous caller cannot refresh, so a 401 is reported as it is instead of as a refresh failure.
        refresh_codes = () if self.auth_kind in ("accesstoken", "anonymous") else (401,)
        self.session = AuthorizedSession(self.credentials, refresh_status_codes=refresh_codes)

    def _load_credentials(self, params):
        scopes = params["scopes"]
        try:
            if self.auth_kind == "anonymous":
                return AnonymousCredentials(), None
            if self.auth_kind == "accesstoken":
                return oauth2_credentials.Credentials(params["access_token"]), None
            if self.auth_kind == "serviceaccount":
                if params.get("service_account_contents"):
                    info = json.loads(params["service_account_contents"])
                    creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
                    return creds, info.get("project_id")
                creds = service_account.Credentials.from_service_account_file(
                    params["service_account_file"], scopes=scopes
                )
                return creds, getattr(creds, "project_id", None)
            return google.auth.default(scopes=scopes)
        except google_auth_exceptions.DefaultCredentialsError as exc:
            raise GcpCredentialsError(
                "Could not load credentials for auth_kind=%s: %s. For application, run 'gcloud auth "
                "application-default login', set GOOGLE_APPLICATION_CREDENTIALS, or run in a pod with Workload "
                "Identity; otherwise choose another auth_kind." % (self.auth_kind, exc)
            ) from None
        except (OSError, ValueError) as exc:
            raise GcpCredentialsError(
                "Could not read the service-account key for auth_kind=serviceaccount: %s" % exc
            ) from None

    @property
    def identity(self):
        """A description of who is calling, for error messages."""
        if self.auth_kind == "anonymous":
            return "the anonymous caller"
        email = getattr(self.credentials, "service_account_email", None)
        if email and email != "default":
            return email
        account = getattr(self.credentials, "account", None)
        if account:
            return account
        if self.auth_kind == "accesstoken":
            return "the identity of the access token"
        return "the Application Default Credentials identity"

    def url(self, api, path):
        return "%s%s" % (self.endpoints[api], path)

    def request(self, method, url, resource=None, params=None, json_body=None):
        """Send one call, retrying 429/5xx (and connection errors of reads); return the decoded JSON or {}."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json_body, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except google_auth_exceptions.RefreshError as exc:
                raise GcpCredentialsError(
                    "The credentials of %s could not be refreshed: %s. Check auth_kind and the key or token it "
                    "uses." % (self.identity, exc)
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if method == "GET" and attempt < MAX_ATTEMPTS:
                    time.sleep(backoff_seconds(attempt))
                    continue
                raise GcpError("Could not reach %s %s (attempt %d): %s" % (method, url, attempt, exc)) from None
            if response.status_code in RETRYABLE_STATUS and attempt < MAX_ATTEMPTS:
                time.sleep(backoff_seconds(attempt, _retry_after(response)))
                continue
            if response.status_code >= 400:
                raise translate_error(response.status_code, response.text, method, url, resource, self.identity)
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise GcpError(
                    "%s %s answered HTTP %s with a body that is not JSON: %r"
                    % (method, url, response.status_code, response.text[:200])
                ) from None
