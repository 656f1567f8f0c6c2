"""Reverse proxy a standby JobManager uses to answer /api/v1 requests: it forwards them to the leader.

Method, path, query, body and the end-to-end headers go to the leader's advertised URL; its status,
body and end-to-end headers come back unchanged. Hop-by-hop headers (RFC 9110 section 7.6.1) stay
on their own connection. A request forwarded once is never forwarded again, so two JobManagers that
each believe the other leads answer 503 instead of passing a request back and forth.
"""

from __future__ import annotations

import logging

import bottle
import requests
from requests.adapters import HTTPAdapter

from stream_processing.http_api import json_response

log = logging.getLogger(__name__)

FORWARDED_BY = "X-SP-Forwarded-By"
SERVED_BY = "X-SP-Leader"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Recomputed for the new connection (Host, lengths) or by this server (Server, Date).
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "server", "date"}
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 15.0


def request_headers(environ: dict) -> dict[str, str]:
    """The client's headers from a WSGI environ, with their usual capitalisation."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[key.replace("_", "-").title()] = value
    return headers


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _connection_tokens(headers: dict[str, str]) -> set[str]:
    """Header names listed in Connection are hop-by-hop too."""
    value = _header(headers, "connection") or ""
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def forwarded_request_headers(headers: dict[str, str], *, client: str, host: str, scheme: str,
                              jobmanager_id: str) -> dict[str, str]:
    """End-to-end request headers plus X-Forwarded-* and the loop guard."""
    prior = _header(headers, "X-Forwarded-For")
    dropped = NOT_FORWARDED | _connection_tokens(headers) | {"x-forwarded-for", FORWARDED_BY.lower()}
    forwarded = {name: value for name, value in headers.items() if name.lower() not in dropped}
    forwarded["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    forwarded.setdefault("X-Forwarded-Host", host)
    forwarded.setdefault("X-Forwarded-Proto", scheme)
    forwarded[FORWARDED_BY] = jobmanager_id
    return forwarded


def returned_response_headers(headers, leader_id: str) -> list[tuple[str, str]]:
    """The leader's end-to-end response headers, and which JobManager answered."""
    items = list(headers.items())
    dropped = NOT_RETURNED | _connection_tokens(dict(items))
    return [(name, value) for name, value in items if name.lower() not in dropped] + [(SERVED_BY, leader_id)]


def unavailable(message: str, **details) -> bottle.HTTPResponse:
    return json_response(503, {"error": message, **details}, {"Retry-After": "1"})


class LeaderProxy:
    def __init__(self, jobmanager_id: str, pool_size: int, connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
                 read_timeout: float = READ_TIMEOUT_SECONDS):
        self.jobmanager_id = jobmanager_id
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        self.session.trust_env = False  # never through an HTTP proxy from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def forward(self, environ: dict, body: bytes, leader_id: str | None, leader_url: str | None
                ) -> bottle.HTTPResponse:
        """The leader's answer to this request, or 503 with the reason it could not be had."""
        headers = request_headers(environ)
        forwarder = _header(headers, FORWARDED_BY)
        if forwarder is not None:
            return unavailable(
                f"JobManager {self.jobmanager_id} is not the leader and the request was already forwarded by "
                f"{forwarder}; leadership is changing, retry later",
                jobmanager_id=self.jobmanager_id)
        if not leader_url or leader_id == self.jobmanager_id:
            return unavailable(
                f"no JobManager leader is known to {self.jobmanager_id}; nothing was changed, retry later",
                jobmanager_id=self.jobmanager_id)
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        url = f"{leader_url}{path}" + (f"?{query}" if query else "")
        outgoing = forwarded_request_headers(
            headers, client=environ.get("REMOTE_ADDR", ""), host=environ.get("HTTP_HOST", ""),
            scheme=environ.get("wsgi.url_scheme", "http"), jobmanager_id=self.jobmanager_id)
        try:
            answer = self.session.request(environ["REQUEST_METHOD"], url, data=body or None, headers=outgoing,
                                          timeout=self.timeout, allow_redirects=False)
        except requests.ConnectionError as error:
            log.warning("leader unreachable: %s", error, extra={"leader_id": leader_id, "leader_url": leader_url})
            return unavailable(f"the leader JobManager {leader_id} at {leader_url} is unreachable; nothing was "
                               "changed, retry later", leader_id=leader_id)
        except requests.Timeout:
            return unavailable(f"the leader JobManager {leader_id} at {leader_url} did not answer within "
                               f"{self.timeout[1]:g} s; the request may or may not have been applied",
                               leader_id=leader_id)
        # requests has already decoded any Content-Encoding, hence it is not returned.
        response = bottle.HTTPResponse(body=answer.content, status=answer.status_code)
        for name, value in returned_response_headers(answer.headers, leader_id):
            response.add_header(name, value)
        return response
