"""A standby JobManager in-process forwarding /api/v1 to a real leader JobManager app served over HTTP."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from webtest import TestApp

from stream_processing.config import load_config
from stream_processing.jobmanager.api import create_app
from stream_processing.jobmanager.leader_election import Leader
from stream_processing.jobmanager.leader_proxy import (
    FORWARDED_BY,
    forwarded_request_headers,
    request_headers,
    returned_response_headers,
)
from stream_processing.jobmanager.service import JobManagerService
from stream_processing.wsgi_metrics import RequestMetricsMiddleware


def jobmanager(tmp_path, closed_port, name: str) -> JobManagerService:
    """A JobManager whose database is unreachable: only validation and 503 paths answer."""
    return JobManagerService(load_config({
        "SP_ROLE": "jobmanager", "SP_DATABASE_URL": f"postgresql://sp@127.0.0.1:{closed_port}/sp",
        "SP_CHECKPOINT_DIR": str(tmp_path / name), "SP_HTTP_HOST": "127.0.0.1", "SP_JOBMANAGER_ID": name,
    }))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def leader(tmp_path, closed_port):
    """The leader's real app on a loopback port; `seen` keeps the environ of each request it received."""
    service = jobmanager(tmp_path, closed_port, "jm-leader")
    service.election.leading = True
    app = create_app(service.config, service)
    seen = []

    def recording_app(environ, start_response):
        seen.append(dict(environ))
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording_app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def standby(tmp_path, closed_port):
    service = jobmanager(tmp_path, closed_port, "jm-standby")
    return service, TestApp(RequestMetricsMiddleware(create_app(service.config, service), service.registry))


def follow(service: JobManagerService, leader_id: str, url: str) -> None:
    service.election.leader = Leader(leader_id, url, 1, datetime.now(UTC), 0.0)


def test_request_headers_are_read_from_the_wsgi_environ():
    environ = {"HTTP_ACCEPT": "application/json", "HTTP_X_REQUEST_ID": "abc", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": "12", "PATH_INFO": "/api/v1/jobs"}
    assert request_headers(environ) == {"Accept": "application/json", "X-Request-Id": "abc",
                                        "Content-Type": "application/json", "Content-Length": "12"}


def test_hop_by_hop_headers_stay_and_forwarding_headers_are_added():
    headers = {"Host": "jobmanager:8081", "Content-Length": "12", "Content-Type": "application/json",
               "Connection": "keep-alive, X-Session", "X-Session": "1", "Keep-Alive": "timeout=5",
               "Transfer-Encoding": "chunked", "Te": "trailers", "Upgrade": "h2c", "Accept": "application/json",
               "Authorization": "Bearer token", "X-Forwarded-For": "10.0.0.9"}
    forwarded = forwarded_request_headers(headers, client="10.0.0.7", host="jobmanager:8081", scheme="http",
                                          jobmanager_id="jm-1")
    assert forwarded == {
        "Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer token",
        "X-Forwarded-For": "10.0.0.9, 10.0.0.7", "X-Forwarded-Host": "jobmanager:8081", "X-Forwarded-Proto": "http",
        FORWARDED_BY: "jm-1",
    }


def test_response_headers_keep_end_to_end_ones_and_name_the_leader():
    headers = {"Content-Type": "application/json", "Location": "/api/v1/jobs/x", "Retry-After": "1",
               "Content-Length": "99", "Content-Encoding": "gzip", "Connection": "close", "Server": "waitress",
               "Date": "Sun, 29 Nov 2026 09:00:00 GMT", "Transfer-Encoding": "chunked", "Server-Timing": "app;dur=1"}
    assert returned_response_headers(headers, "jm-0") == [
        ("Content-Type", "application/json"), ("Location", "/api/v1/jobs/x"), ("Retry-After", "1"),
        ("Server-Timing", "app;dur=1"), ("X-SP-Leader", "jm-0")]


def test_statuses_bodies_and_headers_come_back_from_the_leader(leader, standby):
    url, seen = leader
    service, client = standby
    follow(service, "jm-leader", url)

    invalid = client.post_json("/api/v1/jobs?dry=1", {"name": ""}, status=400,
                               headers={"X-Request-Id": "r-1", "Connection": "keep-alive"})
    assert invalid.content_type == "application/json"
    assert invalid.headers["X-SP-Leader"] == "jm-leader"
    assert invalid.json["error"] == "request body does not match the schema"
    assert "(body): 'source' is a required property" in invalid.json["problems"]
    received = seen[-1]
    assert (received["REQUEST_METHOD"], received["PATH_INFO"], received["QUERY_STRING"]) == (
        "POST", "/api/v1/jobs", "dry=1")
    assert received["HTTP_X_REQUEST_ID"] == "r-1"
    assert received["HTTP_X_SP_FORWARDED_BY"] == "jm-standby"
    assert "HTTP_X_FORWARDED_FOR" in received

    wrong_type = client.post("/api/v1/jobs", b"name=x", content_type="application/x-www-form-urlencoded", status=415)
    assert "application/json" in wrong_type.json["error"]
    assert seen[-1]["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    # The leader's own database is down: its 503 and message come back as they are.
    valid = {"name": "copy", "source": {"topic": "in"}, "sink": {"topic": "out"},
             "operators": [{"type": "map", "fields": {"user": "user_id"}}]}
    assert "nothing was changed" in client.post_json("/api/v1/jobs", valid, status=503).json["error"]
    assert client.get("/api/v1/jobs/not-a-uuid", status=404).headers["X-SP-Leader"] == "jm-leader"
    assert client.delete("/api/v1/taskmanagers/tm-9", status=404).json["error"]
    assert seen[-1]["REQUEST_METHOD"] == "DELETE"
    # Nothing was handled by the standby itself, and it recorded the requests under their routes.
    assert service.resources.jobs == {}
    metrics = client.get("/metrics").text
    assert 'sp_http_requests_total{method="POST",route="/api/v1/jobs",status="400"} 1.0' in metrics
    assert "sp_jobmanager_leader 0.0" in metrics


def test_probes_and_metrics_are_answered_locally(leader, standby):
    url, seen = leader
    service, client = standby
    follow(service, "jm-leader", url)
    service.started = True
    body = client.get("/health", status=503).json  # this standby's own database is unreachable
    assert (body["role"], body["leader_id"], body["jobmanager_id"]) == ("follower", "jm-leader", "jm-standby")
    assert body["checks"]["resource_manager"] == {
        "status": "ok", "state": "standby", "leader": service.election.leader.as_json()}
    assert client.get("/health/ready").json == {"status": "ready"}
    client.get("/health/live")
    client.get("/metrics")
    assert seen == []


def test_without_a_known_leader_the_answer_is_a_clear_503(standby):
    service, client = standby
    response = client.get("/api/v1/jobs", status=503)
    assert response.headers["Retry-After"] == "1"
    assert response.json == {"error": "no JobManager leader is known to jm-standby; nothing was changed, retry later",
                             "jobmanager_id": "jm-standby"}
    # A stale leader row naming this very JobManager is no leader either.
    follow(service, "jm-standby", "http://127.0.0.1:1")
    assert "no JobManager leader is known" in client.get("/api/v1/jobs", status=503).json["error"]


def test_an_unreachable_leader_is_a_503_naming_it(standby, closed_port):
    service, client = standby
    follow(service, "jm-gone", f"http://127.0.0.1:{closed_port}")
    error = client.post_json("/api/v1/jobs", {"name": "x"}, status=503).json["error"]
    assert error == (f"the leader JobManager jm-gone at http://127.0.0.1:{closed_port} is unreachable; nothing was "
                     "changed, retry later")


def test_a_forwarded_request_is_never_forwarded_again(leader, standby):
    url, seen = leader
    service, client = standby
    follow(service, "jm-leader", url)
    response = client.get("/api/v1/jobs", headers={FORWARDED_BY: "jm-other"}, status=503)
    assert "already forwarded by jm-other" in response.json["error"]
    assert seen == []
