"""JSON request/response handling, health and metrics routes shared by both services."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Callable

import bottle
from jsonschema import Draft202012Validator
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

CHECK_OK = "ok"
CHECK_DEGRADED = "degraded"
CHECK_FAILING = "failing"


class ApiError(Exception):
    """A client or availability error answered as JSON {"error": message, ...} with the given status."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def json_response(status: int, payload, headers: dict | None = None) -> bottle.HTTPResponse:
    response = bottle.HTTPResponse(
        body=json.dumps(payload, separators=(",", ":"), default=str), status=status, headers=headers
    )
    response.content_type = "application/json"
    return response


def read_json_body(validator: Draft202012Validator, max_bytes: int):
    """The request's JSON body, checked for size, media type, syntax and schema; raises ApiError (4xx)."""
    request = bottle.request
    if request.content_length > max_bytes:
        raise ApiError(413, f"request body is {request.content_length} bytes; the limit is {max_bytes}")
    media_type = request.content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, not {media_type or 'missing'!r}")
    raw = request.environ["wsgi.input"].read(max_bytes + 1) if request.content_length < 0 else request.body.read()
    if len(raw) > max_bytes:
        raise ApiError(413, f"request body exceeds the limit of {max_bytes} bytes")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise ApiError(
            400, "request body does not match the schema",
            problems=[f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:20]],
        )
    return document


def handle_api_errors(callback):
    """Bottle plugin turning ApiError into its JSON response."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except ApiError as error:
            return json_response(error.status, {"error": error.message, **error.details})

    return wrapper


def install_error_pages(app: bottle.Bottle) -> None:
    """JSON bodies for errors Bottle raises itself (404, 405, 500...)."""

    def json_error(error: bottle.HTTPError):
        if error.status_code >= 500:
            log.error("request failed: %s %s", bottle.request.method, bottle.request.path, exc_info=error.exception)
            message = "internal error; see the service log"
        else:
            message = error.body if isinstance(error.body, str) and error.body else error.status_line
        bottle.response.content_type = "application/json"
        return json.dumps({"error": message})

    app.default_error_handler = json_error


def health_document(checks: dict[str, dict], shutting_down: bool, details: dict | None = None) -> tuple[int, dict]:
    """Overall status from per-check statuses: failing -> 503, degraded -> 200 "degraded"."""
    statuses = {check["status"] for check in checks.values()}
    if shutting_down:
        overall = "shutting_down"
    elif CHECK_FAILING in statuses:
        overall = "unhealthy"
    elif CHECK_DEGRADED in statuses:
        overall = "degraded"
    else:
        overall = "healthy"
    code = 200 if overall in ("healthy", "degraded") else 503
    return code, {"status": overall, "timestamp": datetime.now(UTC).isoformat(), **(details or {}), "checks": checks}


def add_probe_routes(
    app: bottle.Bottle,
    registry: CollectorRegistry,
    checks: Callable[[], dict[str, dict]],
    is_live: Callable[[], bool],
    is_ready: Callable[[], bool],
    is_shutting_down: Callable[[], bool],
    details: Callable[[], dict] | None = None,
) -> None:
    """/health, /health/live, /health/ready and /metrics; all answer from in-memory state.

    details() adds top-level fields to /health (the JobManager's role and leader).
    """

    @app.get("/health")
    def health():
        code, document = health_document(checks(), is_shutting_down(), details() if details else None)
        return json_response(code, document)

    @app.get("/health/live")
    def live():
        ok = is_live()
        return json_response(200 if ok else 503, {"status": "alive" if ok else "dead"})

    @app.get("/health/ready")
    def ready():
        ok = is_ready() and not is_shutting_down()
        return json_response(200 if ok else 503, {"status": "ready" if ok else "not_ready"})

    @app.get("/metrics")
    def metrics():
        return bottle.HTTPResponse(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
