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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

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
TOKEN_PATH = "/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PERMISSIONS = {
    "get": "iam.serviceAccounts.get",
    "create": "iam.serviceAccounts.create",
    "getIamPolicy": "iam.serviceAccounts.getIamPolicy",
    "setIamPolicy": "iam.serviceAccounts.setIamPolicy",
}
HTTP_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


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
        403,
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource (or it may not exist).",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": permission},
            }
        ],
    )


def service_disabled(project_number):
    activation = f"https://console.developers.google.com/apis/api/iam.googleapis.com/overview?project={project_number}"
    return ApiError(
        403,
        "PERMISSION_DENIED",
        f"Identity and Access Management (IAM) API has not been used in project {project_number} before or it is "
        f"disabled. Enable it by visiting {activation} then retry. If you enabled this API recently, wait a few "
        "minutes for the action to propagate to our systems and retry.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "iam.googleapis.com",
                    "consumer": f"projects/{project_number}",
                    "activationUrl": activation,
                    "serviceTitle": "Identity and Access Management (IAM) API",
                    "containerInfo": project_number,
                },
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Google developers console API activation", "url": activation}],
            },
        ],
    )


def unauthenticated(missing):
    if missing:
        return ApiError(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "CREDENTIALS_MISSING",
                    "domain": "googleapis.com",
                    "metadata": {"service": "iam.googleapis.com"},
                }
            ],
        )
    return ApiError(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
        "authentication credential.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "domain": "googleapis.com",
                "metadata": {"service": "iam.googleapis.com"},
            }
        ],
    )


def invalid_argument(message):
    return ApiError(400, "INVALID_ARGUMENT", message)


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
            self.keys = {}
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

    def add_service_account_key(self, email, public_key_pem, permissions=("*",)):
        """Let the token endpoint exchange JWTs signed by this key for tokens of email (a key's token_uri)."""
        with self.lock:
            self.keys[email] = {"public_key": public_key_pem, "permissions": set(permissions)}

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
        """Run writer(state, email) right after a getIamPolicy answer for email is computed, before it is sent.

        Writers queue up: each one runs after one getIamPolicy call, in the order they were added.
        """
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
        email = f"{account_id}@{project_id}{USER_MANAGED_DOMAIN}"
        unique_id = str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21).rjust(21, "1")
        self.accounts[email] = {
            "resource": {
                "name": f"projects/{project_id}/serviceAccounts/{email}",
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
                    binding["role"] = "{}_withcond_{}".format(binding["role"], digest)
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
        if environ.get("PATH_INFO") == TOKEN_PATH:
            return self._token(environ, start_response)
        method = None
        identity = None
        try:
            route = ROUTE_PATTERN.match(environ.get("PATH_INFO", ""))
            if not route:
                raise ApiError(
                    404,
                    "NOT_FOUND",
                    "The requested URL {} was not found on this server.".format(environ.get("PATH_INFO")),
                )
            method = self._method(environ["REQUEST_METHOD"], route)
            query = parse_qs(environ.get("QUERY_STRING", ""))
            body = self._body(environ)
            with self.state.lock:
                faults = self.state.faults.get(method)
                if faults:
                    code = faults.pop(0)
                    raise ApiError(
                        code,
                        "UNAVAILABLE" if code >= 500 else "RESOURCE_EXHAUSTED",
                        "The service is currently unavailable." if code >= 500 else "Quota exceeded.",
                    )
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
        raise ApiError(405, "INVALID_ARGUMENT", f"Method {http_method} is not allowed here.")

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
        token = self.state.tokens.get(header[len("Bearer ") :])
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
            (a for a in self.state.accounts.values() if a["resource"]["uniqueId"] == key), None
        )
        project_id = route.group("project")
        if project_id == "-":
            project_id = account["resource"]["projectId"] if account else key.partition("@")[2].split(".")[0]
        self._check(identity, method, project_id)
        if account is None:
            if method == "get":
                raise ApiError(404, "NOT_FOUND", "Unknown service account")
            raise ApiError(
                404,
                "NOT_FOUND",
                "Service account projects/{}/serviceAccounts/{} does not exist.".format(route.group("project"), key),
            )
        return account

    def _get(self, route, identity, query, body):
        return copy.deepcopy(self._account(route, identity, "get")["resource"]), None

    def _create(self, route, identity, query, body):
        project_id = route.group("project")
        self._check(identity, "create", project_id)
        if project_id not in self.state.projects:
            raise ApiError(404, "NOT_FOUND", f"Project {project_id} not found.")
        account_id = body.get("accountId", "")
        if not ACCOUNT_ID_PATTERN.match(account_id):
            raise invalid_argument(
                f"Invalid account ID {account_id!r}: it must be 6-30 characters, lowercase letters, digits "
                "and hyphens, starting with a letter."
            )
        email = f"{account_id}@{project_id}{USER_MANAGED_DOMAIN}"
        if email in self.state.accounts:
            raise ApiError(
                409,
                "ALREADY_EXISTS",
                f"Service account {account_id} already exists within project projects/{project_id}.",
            )
        resource = self.state._create_account(project_id, account_id, body.get("serviceAccount") or {})
        return copy.deepcopy(resource), None

    @staticmethod
    def _requested_version(query, body):
        values = query.get("options.requestedPolicyVersion") or [
            str((body.get("options") or {}).get("requestedPolicyVersion", 0))
        ]
        try:
            version = int(values[0])
        except ValueError:
            raise invalid_argument("Invalid value at 'options.requested_policy_version'") from None
        if version not in (0, 1, 3):
            raise invalid_argument(f"Invalid requested policy version {version}; valid values are 0, 1 and 3.")
        return version

    def _getIamPolicy(self, route, identity, query, body):  # noqa: N802 (named after the API method)
        account = self._account(route, identity, "getIamPolicy")
        view = self.state._policy_view(account, self._requested_version(query, body))
        email = account["resource"]["email"]
        queued = self.state.after_get_policy_hooks.get(email)
        writer = queued.pop(0) if queued else None
        return view, (lambda: writer(self.state, email)) if writer else None

    def _setIamPolicy(self, route, identity, query, body):  # noqa: N802 (named after the API method)
        account = self._account(route, identity, "setIamPolicy")
        policy = body.get("policy")
        if not isinstance(policy, dict):
            raise invalid_argument("Request contains an invalid argument: policy is required.")
        version = policy.get("version", 1)
        if version not in (0, 1, 3):
            raise invalid_argument(f"Invalid policy version {version}; valid values are 0, 1 and 3.")
        bindings = []
        for binding in policy.get("bindings") or []:
            role, members = binding.get("role", ""), binding.get("members") or []
            if "_withcond_" in role or not ROLE_PATTERN.match(role):
                raise invalid_argument(f"Role {role} is not supported for this resource.")
            if not members:
                raise invalid_argument(f"Binding for role {role} has no members.")
            bad = [member for member in members if not MEMBER_PATTERN.match(member)]
            if bad:
                raise invalid_argument(f"Invalid member {bad[0]} in binding for role {role}.")
            if binding.get("condition") and version != 3:
                raise invalid_argument(
                    f"Conditional role bindings require policy version 3; the policy has version {version}."
                )
            stored = {"role": role, "members": list(dict.fromkeys(members))}
            if binding.get("condition"):
                stored["condition"] = binding["condition"]
            bindings.append(stored)
        etag = policy.get("etag")
        if etag is not None and etag != account["etag"]:
            raise ApiError(
                409,
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole "
                "read-modify-write with exponential backoff.",
            )
        self.state._store_bindings(account, bindings)
        return self.state._policy_view(account, 3), None

    def _token(self, environ, start_response):
        """OAuth 2 JWT-bearer grant (RFC 7523) as used by service-account keys; errors as in RFC 6749."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode() if length else "")
        if form.get("grant_type") != [JWT_BEARER_GRANT] or not form.get("assertion"):
            return self._respond(start_response, 400, {"error": "unsupported_grant_type"})
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
            claims = json.loads(_b64url_decode(claims_b64))
            with self.state.lock:
                key = self.state.keys.get(claims.get("iss"))
            if key is None:
                raise ValueError("unknown issuer")
            public_key = serialization.load_pem_public_key(key["public_key"].encode())
            public_key.verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return self._respond(
                start_response, 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        token = "ya29.test-" + base64.urlsafe_b64encode(os.urandom(12)).decode()
        self.state.add_token(token, claims["iss"], key["permissions"])
        return self._respond(start_response, 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    @staticmethod
    def _respond(start_response, code, payload):
        data = json.dumps(payload).encode()
        start_response(
            f"{code} {HTTP_REASONS.get(code, 'Error')}",
            [("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", str(len(data)))],
        )
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
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self):
        self._server = make_server(
            "127.0.0.1", 0, IamApi(self.state), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
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
