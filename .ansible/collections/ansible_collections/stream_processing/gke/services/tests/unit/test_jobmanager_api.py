"""The JobManager app in-process, with no database reachable: validation, health states and metrics."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from webtest import TestApp

from stream_processing.config import load_config
from stream_processing.jobmanager.api import create_app
from stream_processing.jobmanager.openapi import OPENAPI, SCHEMAS
from stream_processing.jobmanager.service import JobManagerService
from stream_processing.wsgi_metrics import RequestMetricsMiddleware

VALID_JOB = {
    "name": "clicks per user",
    "parallelism": 3,
    "source": {"topic": "events"},
    "sink": {"topic": "counts"},
    "operators": [
        {"type": "filter", "field": "kind", "op": "eq", "value": "click"},
        {"type": "map", "fields": {"user": "user_id", "ts": "ts"}},
        {"type": "tumbling_window", "key_field": "user", "time_field": "ts", "size_ms": 1000},
    ],
}


@pytest.fixture
def service(tmp_path, closed_port):
    config = load_config({
        "SP_ROLE": "jobmanager",
        "SP_DATABASE_URL": f"postgresql://sp@127.0.0.1:{closed_port}/sp",
        "SP_CHECKPOINT_DIR": str(tmp_path),
        "SP_MAX_REQUEST_BYTES": "8192",
        "SP_HTTP_HOST": "127.0.0.1",
        "SP_JOBMANAGER_ID": "jm-unit",
    })
    service = JobManagerService(config)
    # These tests are about the leader's own handling; forwarding is covered in test_leader_proxy.py.
    service.election.leading = True
    return service


@pytest.fixture
def client(service):
    app = create_app(service.config, service)
    return TestApp(RequestMetricsMiddleware(app, service.registry))


def with_changes(**changes) -> dict:
    return {**VALID_JOB, **changes}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "'name' is a required property"),
        (with_changes(parallelism=0), "parallelism: 0 is less than the minimum of 1"),
        (with_changes(parallelism="3"), "parallelism: '3' is not of type 'integer'"),
        (with_changes(name=""), "name"),
        (with_changes(unknown=True), "Additional properties are not allowed"),
        (with_changes(source={"topic": "bad topic!"}), "source/topic"),
        (with_changes(operators=[{"type": "join"}]), "operators/0/type"),
        (with_changes(operators=[{"type": "filter", "field": "x", "op": "eq"}]), "'value' is a required property"),
        (with_changes(operators=[{"type": "tumbling_window", "key_field": "k", "time_field": "t", "size_ms": 0}]),
         "operators/0/size_ms"),
        (with_changes(operators=[{"type": "map", "fields": {}}]), "operators/0/fields"),
        (with_changes(operators=[VALID_JOB["operators"][2], VALID_JOB["operators"][0]]), "must be the last operator"),
        (with_changes(sink={"topic": "events"}), "must differ from source/topic"),
        ([1, 2], "is not of type 'object'"),
    ],
)
def test_invalid_jobs_get_400_with_the_problem_and_change_nothing(client, service, document, message):
    response = client.post_json("/api/v1/jobs", document, status=400)
    assert response.content_type == "application/json"
    assert message in " ".join(response.json.get("problems", [])) + response.json["error"]
    assert service.resources.jobs == {}


def test_malformed_json_oversized_bodies_and_wrong_media_types_are_4xx(client, service):
    malformed = client.post("/api/v1/jobs", b'{"name": ', content_type="application/json", status=400)
    assert "not valid JSON" in malformed.json["error"]
    oversized = client.post("/api/v1/jobs", b"{" + b" " * 9000 + b"}", content_type="application/json", status=413)
    assert "limit is 8192" in oversized.json["error"]
    wrong_type = client.post("/api/v1/jobs", b"name=x", content_type="application/x-www-form-urlencoded", status=415)
    assert "application/json" in wrong_type.json["error"]
    too_deep = client.post("/api/v1/jobs", b"[" * 3000 + b"]" * 3000, content_type="application/json", status=400)
    assert "nested too deeply" in too_deep.json["error"]
    not_utf8 = client.post("/api/v1/jobs", b'{"name": "\xff"}', content_type="application/json", status=400)
    assert not_utf8.json["error"]
    assert service.resources.jobs == {}


def test_valid_job_without_database_is_503_and_not_half_written(client, service):
    response = client.post_json("/api/v1/jobs", VALID_JOB, status=503)
    assert "nothing was changed" in response.json["error"]
    assert service.resources.jobs == {}


def test_unknown_resources_and_methods_are_json_errors(client):
    assert client.get("/api/v1/jobs/not-a-uuid", status=404).json["error"]
    assert client.get("/api/v1/jobs/0b7c4a8e-1d2f-4c3b-9a8e-5f6d7c8b9a0e", status=404).json["error"]
    assert client.get("/nowhere", status=404).content_type == "application/json"
    assert client.put_json("/api/v1/jobs", {}, status=405).content_type == "application/json"
    heartbeat = {"slots": 1, "tasks": []}
    assert "register first" in client.post_json("/api/v1/taskmanagers/tm-1/heartbeat", heartbeat, status=404).json[
        "error"]


def test_heartbeat_and_registration_bodies_are_validated(client):
    client.post_json("/api/v1/taskmanagers", {"id": "tm 1", "slots": 2}, status=400)
    client.post_json("/api/v1/taskmanagers", {"id": "tm-1", "slots": 0}, status=400)
    bad_report = {"slots": 1, "tasks": [], "checkpoint_reports": [{"job_id": "x", "checkpoint_id": 0}]}
    problems = client.post_json("/api/v1/taskmanagers/tm-1/heartbeat", bad_report, status=400).json["problems"]
    assert any(problem.startswith("checkpoint_reports/0") for problem in problems)


def test_health_is_503_until_started_and_names_each_check(client):
    response = client.get("/health", status=503)
    body = response.json
    assert body["status"] == "unhealthy"
    assert body["timestamp"]
    assert set(body["checks"]) == {"resource_manager", "database", "checkpoint_storage"}
    assert body["checks"]["database"]["status"] == "failing"
    assert client.get("/health/live").json == {"status": "alive"}
    assert client.get("/health/ready", status=503).json == {"status": "not_ready"}


def test_readiness_and_health_are_503_while_shutting_down(client, service):
    service.started = True
    assert client.get("/health/ready").json == {"status": "ready"}
    service.shutting_down = True
    assert client.get("/health/ready", status=503).json == {"status": "not_ready"}
    assert client.get("/health", status=503).json["status"] == "shutting_down"


def test_metrics_cover_jobs_slots_checkpoints_and_requests(client):
    client.get("/health", status=503)
    client.post_json("/api/v1/jobs", {}, status=400)
    text = client.get("/metrics").text
    for family in (
        'sp_jobs{state="running"} 0.0',
        "sp_taskmanagers_registered 0.0",
        "sp_task_slots_free 0.0",
        "sp_checkpoints_completed_total 0.0",
        "sp_checkpoints_failed_total 0.0",
        "sp_checkpoint_duration_seconds_bucket",
        "sp_checkpoint_local_fallbacks_total 0.0",
        "sp_job_restarts_total 0.0",
        'sp_http_requests_total{method="GET",route="/health",status="503"} 1.0',
        'sp_http_requests_total{method="POST",route="/api/v1/jobs",status="400"} 1.0',
        'sp_http_request_duration_seconds_count{method="GET",route="/health"} 1.0',
    ):
        assert family in text, family


def test_openapi_document_is_served_and_its_schemas_are_valid(client):
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}/checkpoints", "/health"} <= set(document["paths"])
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    assert document == OPENAPI
