"""IAM v1 service-account API test server: state, WSGI app and a threaded HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import threading
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

USER_MANAGED_DOMAIN = ".iam.gserviceaccount.com"
EMPTY_POLICY_ETAG = "ACAB"
ACCOUNT_ID_PATTERN = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
MEMBER_PATTERN = re.compile(
    r"^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|principal|principalSet|deleted:\w+):.+)$"
)
ROLE_PATTERN = re.compile(r"^(roles/[\w.]+|(projects|organizations)/[^/]+/roles/[\w.]+)$")
ROUTE_PATTERN = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/serviceAccounts(?:/(?P<account>[^/:]+)(?::(?P<verb>getIamPolicy|setIamPolicy))?)?$"
)
PERMISSIONS = {
    "get": "iam.serviceAccounts.get",
    "create": "iam.serviceAccounts.create",
    "getIamPolicy": "iam.serviceAccounts.getIamPolicy",
    "setIamPolicy": "iam.serviceAccounts.setIamPolicy",
}
HTTP_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
                503: "Service Unavailable"}


class ApiError(Exception):
    """An error answer in the JSON format of Google APIs (google.rpc.Status)."""

    def __init__(self, code, status, message, details=None):
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details or []

    def payload(self):
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def permission_denied(permission):
    return ApiError(
        403, "PERMISSION_DENIED", "Permission '%s' denied on resource (or it may not exist)." % permission,
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
          "domain": "iam.googleapis.com", "metadata": {"permission": permission}}],
    )


def service_disabled(project_number):
    activation = "https://console.developers.google.com/apis/api/iam.googleapis.com/overview?project=%s" % (
        project_number)
    return ApiError(
        403, "PERMISSION_DENIED",
        "Identity and Access Management (IAM) API has not been used in project %s before or it is disabled. Enable "
        "it by visiting %s then retry. If you enabled this API recently, wait a few minutes for the action to "
        "propagate to our systems and retry." % (project_number, activation),
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
          "domain": "googleapis.com",
          "metadata": {"service": "iam.googleapis.com", "consumer": "projects/%s" % project_number,
                       "activationUrl": activation, "serviceTitle": "Identity and Access Management (IAM) API",
                       "containerInfo": project_number}},
         {"@type": "type.googleapis.com/google.rpc.Help",
          "links": [{"description": "Google developers console API activation", "url": activation}]}],
    )


def unauthenticated(missing):
    if missing:
        return ApiError(
            401, "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CREDENTIALS_MISSING",
              "domain": "googleapis.com", "metadata": {"service": "iam.googleapis.com"}}],
        )
    return ApiError(
        401, "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
        "authentication credential.",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
          "domain": "googleapis.com", "metadata": {"service": "iam.googleapis.com"}}],
    )


def invalid_argument(message):
    return ApiError(400, "INVALID_ARGUMENT", message)


def _new_etag():
    # IAM etags are opaque base64 strings that change on every write.
    return base64.b64encode(b"\x07" + os.urandom(7)).decode()


class IamTestState:
    """Projects, service accounts with their policies, tokens, permissions and test hooks; thread-safe."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.projects = {}
            self.accounts = {}
            self.tokens = {}
            self.after_get_policy_hooks = {}
            self.faults = {}
            self.calls = []

    # Setup helpers for tests.
    def add_project(self, project_id, number=None, iam_enabled=True):
        with self.lock:
            number = number or str(int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % 10**12)
            self.projects[project_id] = {"number": number, "iam_enabled": iam_enabled}

    def set_iam_enabled(self, project_id, enabled):
        with self.lock:
            self.projects[project_id]["iam_enabled"] = enabled

    def add_token(self, token, identity, permissions=("*",)):
        with self.lock:
            self.tokens[token] = {"identity": identity, "permissions": set(permissions)}

    def add_service_account(self, project_id, account_id, display_name=""):
        with self.lock:
            return self._create_account(project_id, account_id, {"displayName": display_name})["email"]

    def policy(self, email):
        """The stored policy as a version-3 reader sees it."""
        with self.lock:
            return self._policy_view(self.accounts[email], 3)

    def edit_policy(self, email, edit):
        """Apply edit(bindings) -> bindings as another writer would: a new etag, no etag check."""
        with self.lock:
            account = self.accounts[email]
            self._store_bindings(account, edit(copy.deepcopy(account["bindings"])))

    def after_next_get_policy(self, email, writer):
        """Run writer(state, email) right after the next getIamPolicy answer for email is computed."""
        with self.lock:
            self.after_get_policy_hooks.setdefault(email, []).append(writer)

    def queue_faults(self, method, code, count=1):
        """Answer the next count calls of method ('get', 'getIamPolicy', ...) with code (429 or 5xx)."""
        with self.lock:
            self.faults.setdefault(method, []).extend([code] * count)

    def calls_of(self, method):
        with self.lock:
            return [call for call in self.calls if call["method"] == method]

    # Internals.
    def _create_account(self, project_id, account_id, fields):
        email = "%s@%s%s" % (account_id, project_id, USER_MANAGED_DOMAIN)
        unique_id = str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21).rjust(21, "1")
        self.accounts[email] = {
            "resource": {
                "name": "projects/%s/serviceAccounts/%s" % (project_id, email),
                "projectId": project_id,
                "uniqueId": unique_id,
                "email": email,
                "displayName": fields.get("displayName") or "",
                "description": fields.get("description") or "",
                "etag": "MDEwMjE5MjA=",
                "oauth2ClientId": unique_id,
            },
            "bindings": [],
            "etag": EMPTY_POLICY_ETAG,
        }
        return self.accounts[email]["resource"]

    def _store_bindings(self, account, bindings):
        account["bindings"] = bindings
        account["etag"] = _new_etag()

    @staticmethod
    def _policy_view(account, requested_version):
        bindings = copy.deepcopy(account["bindings"])
        if not bindings and account["etag"] == EMPTY_POLICY_ETAG:
            return {"etag": EMPTY_POLICY_ETAG}
        conditional = any("condition" in binding for binding in bindings)
        if conditional and requested_version < 3:
            # Documented behaviour for version-1 readers: conditional bindings come back with a mangled role name.
            for binding in bindings:
                condition = binding.pop("condition", None)
                if condition:
                    digest = hashlib.sha256(json.dumps(condition, sort_keys=True).encode()).hexdigest()[:20]
                    binding["role"] = "%s_withcond_%s" % (binding["role"], digest)
            version = 1
        else:
            version = 3 if conditional else 1
        policy = {"version": version, "etag": account["etag"]}
        if bindings:
            policy["bindings"] = bindings
        return policy


class IamApi:
    """The WSGI application."""

    def __init__(self, state):
        self.state = state

    def __call__(self, environ, start_response):
        method = None
        identity = None
        try:
            route = ROUTE_PATTERN.match(environ.get("PATH_INFO", ""))
            if not route:
                raise ApiError(404, "NOT_FOUND", "The requested URL %s was not found on this server."
                               % environ.get("PATH_INFO"))
            method = self._method(environ["REQUEST_METHOD"], route)
            query = parse_qs(environ.get("QUERY_STRING", ""))
            body = self._body(environ)
            with self.state.lock:
                faults = self.state.faults.get(method)
                if faults:
                    code = faults.pop(0)
                    raise ApiError(code, "UNAVAILABLE" if code >= 500 else "RESOURCE_EXHAUSTED",
                                   "The service is currently unavailable." if code >= 500 else "Quota exceeded.")
                identity = self._authenticate(environ)
                payload, after = getattr(self, "_" + method)(route, identity, query, body)
                self._log(method, identity, 200)
                if after:
                    after()
            return self._respond(start_response, 200, payload)
        except ApiError as error:
            self._log(method, identity, error.code)
            return self._respond(start_response, error.code, error.payload())

    def _log(self, method, identity, code):
        with self.state.lock:
            self.state.calls.append({"method": method, "identity": (identity or {}).get("identity"), "code": code})

    @staticmethod
    def _method(http_method, route):
        verb, account = route.group("verb"), route.group("account")
        if verb and http_method == "POST":
            return verb
        if account and not verb and http_method == "GET":
            return "get"
        if not account and http_method == "POST":
            return "create"
        raise ApiError(405, "INVALID_ARGUMENT", "Method %s is not allowed here." % http_method)

    @staticmethod
    def _body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid_argument("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise invalid_argument("Invalid JSON payload received. Expected an object.")
        return body

    def _authenticate(self, environ):
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer "):
            raise unauthenticated(missing=True)
        token = self.state.tokens.get(header[len("Bearer "):])
        if token is None:
            raise unauthenticated(missing=False)
        return token

    def _check(self, identity, method, project_id):
        project = self.state.projects.get(project_id)
        if project and not project["iam_enabled"]:
            raise service_disabled(project["number"])
        permission = PERMISSIONS[method]
        if "*" not in identity["permissions"] and permission not in identity["permissions"]:
            raise permission_denied(permission)

    def _account(self, route, identity, method):
        key = unquote(route.group("account"))
        account = self.state.accounts.get(key) or next(
            (a for a in self.state.accounts.values() if a["resource"]["uniqueId"] == key), None)
        project_id = route.group("project")
        if project_id == "-":
            project_id = account["resource"]["projectId"] if account else key.partition("@")[2].split(".")[0]
        self._check(identity, method, project_id)
        if account is None:
            if method == "get":
                raise ApiError(404, "NOT_FOUND", "Unknown service account")
            raise ApiError(404, "NOT_FOUND", "Service account projects/%s/serviceAccounts/%s does not exist."
                           % (route.group("project"), key))
        return account

    def _get(self, route, identity, query, body):
        return copy.deepcopy(self._account(route, identity, "get")["resource"]), None

    def _create(self, route, identity, query, body):
        project_id = route.group("project")
        self._check(identity, "create", project_id)
        if project_id not in self.state.projects:
            raise ApiError(404, "NOT_FOUND", "Project %s not found." % project_id)
        account_id = body.get("accountId", "")
        if not ACCOUNT_ID_PATTERN.match(account_id):
            raise invalid_argument("Invalid account ID %r: it must be 6-30 characters, lowercase letters, digits "
                                   "and hyphens, starting with a letter." % account_id)
        email = "%s@%s%s" % (account_id, project_id, USER_MANAGED_DOMAIN)
        if email in self.state.accounts:
            raise ApiError(409, "ALREADY_EXISTS",
                           "Service account %s already exists within project projects/%s." % (account_id, project_id))
        resource = self.state._create_account(project_id, account_id, body.get("serviceAccount") or {})
        return copy.deepcopy(resource), None

    @staticmethod
    def _requested_version(query, body):
        values = query.get("options.requestedPolicyVersion") or [
            str((body.get("options") or {}).get("requestedPolicyVersion", 0))]
        try:
            version = int(values[0])
        except ValueError:
            raise invalid_argument("Invalid value at 'options.requested_policy_version'") from None
        if version not in (0, 1, 3):
            raise invalid_argument("Invalid requested policy version %s; valid values are 0, 1 and 3." % version)
        return version

    def _getIamPolicy(self, route, identity, query, body):  # noqa: N802 (named after the API method)
        account = self._account(route, identity, "getIamPolicy")
        view = self.state._policy_view(account, self._requested_version(query, body))
        hooks = self.state.after_get_policy_hooks.pop(account["resource"]["email"], [])

        def run_hooks():
            for writer in hooks:
                writer(self.state, account["resource"]["email"])

        return view, run_hooks

    def _setIamPolicy(self, route, identity, query, body):  # noqa: N802 (named after the API method)
        account = self._account(route, identity, "setIamPolicy")
        policy = body.get("policy")
        if not isinstance(policy, dict):
            raise invalid_argument("Request contains an invalid argument: policy is required.")
        version = policy.get("version", 1)
        if version not in (0, 1, 3):
            raise invalid_argument("Invalid policy version %s; valid values are 0, 1 and 3." % version)
        bindings = []
        for binding in policy.get("bindings") or []:
            role, members = binding.get("role", ""), binding.get("members") or []
            if "_withcond_" in role or not ROLE_PATTERN.match(role):
                raise invalid_argument("Role %s is not supported for this resource." % role)
            if not members:
                raise invalid_argument("Binding for role %s has no members." % role)
            bad = [member for member in members if not MEMBER_PATTERN.match(member)]
            if bad:
                raise invalid_argument("Invalid member %s in binding for role %s." % (bad[0], role))
            if binding.get("condition") and version != 3:
                raise invalid_argument(
                    "Conditional role bindings require policy version 3; the policy has version %s." % version)
            stored = {"role": role, "members": list(dict.fromkeys(members))}
            if binding.get("condition"):
                stored["condition"] = binding["condition"]
            bindings.append(stored)
        etag = policy.get("etag")
        if etag is not None and etag != account["etag"]:
            raise ApiError(409, "ABORTED", "There were concurrent policy changes. Please retry the whole "
                                           "read-modify-write with exponential backoff.")
        self.state._store_bindings(account, bindings)
        return self.state._policy_view(account, 3), None

    @staticmethod
    def _respond(start_response, code, payload):
        data = json.dumps(payload).encode()
        start_response("%d %s" % (code, HTTP_REASONS.get(code, "Error")),
                       [("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", str(len(data)))])
        return [data]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


class IamTestServer:
    """Serves IamApi on 127.0.0.1 on a free port in a background thread; use as a context manager."""

    def __init__(self, state=None):
        self.state = state or IamTestState()
        self._server = None
        self._thread = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self._server.server_port

    def start(self):
        self._server = make_server("127.0.0.1", 0, IamApi(self.state), server_class=_ThreadingWSGIServer,
                                   handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="iam-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
