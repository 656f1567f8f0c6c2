"""The JobManager app in-process against a real PostgreSQL: migrations, writes, health and no partial writes."""

from __future__ import annotations

import logging
import time

import pytest
from webtest import TestApp

from stream_processing.config import load_config
from stream_processing.jobmanager.api import create_app
from stream_processing.jobmanager.job_store import JobStore, migration_files
from stream_processing.jobmanager.service import JobManagerService
from stream_processing.wsgi_metrics import RequestMetricsMiddleware

pytestmark = pytest.mark.integration

JOB = {"name": "copy", "parallelism": 2, "source": {"topic": "in"}, "sink": {"topic": "out"},
       "operators": [{"type": "map", "fields": {"user": "user_id"}}]}


def jobmanager_config(tmp_path, postgres_server, postgres_database, bucket):
    return load_config({
        "SP_ROLE": "jobmanager",
        "SP_HTTP_HOST": "127.0.0.1",
        "SP_JOBMANAGER_ID": "jm-in-process",
        "SP_LEADER_POLL_SECONDS": "0.2",
        "SP_DATABASE_URL": postgres_server.dsn(postgres_database, with_password=False),
        "SP_DATABASE_PASSWORD": postgres_server.password,
        "SP_GCS_BUCKET": bucket,
        "SP_CHECKPOINT_DIR": str(tmp_path),
        "SP_HEARTBEAT_INTERVAL_SECONDS": "0.2",
        "SP_HEARTBEAT_TIMEOUT_SECONDS": "1",
        "SP_STORAGE_PROBE_INTERVAL_SECONDS": "0.2",
        "SP_SHUTDOWN_GRACE_SECONDS": "2",
    })


@pytest.fixture
def started(tmp_path, postgres_server, postgres_database, gcs_emulator, gcs_bucket, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    config = jobmanager_config(tmp_path, postgres_server, postgres_database, gcs_bucket)
    service = JobManagerService(config)
    service.start()
    client = TestApp(RequestMetricsMiddleware(create_app(config, service), service.registry))
    yield client, service, postgres_server.connect(postgres_database)
    service.shutdown()


def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def count_rows(connection, table: str) -> int:
    return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_migrations_run_once_in_a_versioned_transaction(postgres_server, postgres_database):
    store = JobStore(postgres_server.dsn(postgres_database, with_password=False), postgres_server.password)
    store.open()
    try:
        latest = len(migration_files())
        assert store.migrate() == latest
        assert store.migrate() == latest
        with postgres_server.connect(postgres_database) as connection:
            assert connection.execute("SELECT version FROM schema_version").fetchall() == [
                (v,) for v in range(1, latest + 1)]
    finally:
        store.close()


def test_health_is_200_when_started_with_every_check(started):
    client = started[0]
    body = client.get("/health").json
    assert body["status"] == "healthy"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "resource_manager": "ok", "database": "ok", "checkpoint_storage": "ok"}
    # A lone JobManager wins the election before it reports ready.
    assert (body["role"], body["leader_id"], body["checks"]["resource_manager"]["state"]) == (
        "leader", "jm-in-process", "leading")
    assert "sp_jobmanager_leader 1.0" in client.get("/metrics").text
    assert client.get("/health/ready").json["status"] == "ready"


def test_jobs_are_submitted_listed_fetched_and_cancelled(started):
    client, service, database = started
    created = client.post_json("/api/v1/jobs", JOB, status=201)
    job_id = created.json["job_id"]
    assert created.headers["Location"] == f"/api/v1/jobs/{job_id}"
    assert created.json["state"] == "scheduled"
    assert [t["task_index"] for t in created.json["tasks"]] == [0, 1]
    assert [j["job_id"] for j in client.get("/api/v1/jobs").json["jobs"]] == [job_id]
    assert client.get(f"/api/v1/jobs/{job_id}").json["spec"] == JOB
    assert count_rows(database, "task_assignments") == 2
    # Not every task runs yet (no TaskManager), so no checkpoint can be taken.
    assert "checkpoints need every task" in client.post(f"/api/v1/jobs/{job_id}/checkpoints", status=409).json[
        "error"]
    assert client.get(f"/api/v1/jobs/{job_id}/checkpoints").json["checkpoints"] == []
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").json["state"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{job_id}/cancel", status=409).json["error"]
    assert database.execute("SELECT state FROM jobs").fetchone() == ("cancelled",)
    text = client.get("/metrics").text
    assert 'sp_jobs{state="cancelled"} 1.0' in text


def test_rejected_input_writes_nothing(started):
    client, _service, database = started
    bad = {**JOB, "operators": [{"type": "map", "fields": {"a": "b"}}, {"type": "filter", "field": "x"}]}
    client.post_json("/api/v1/jobs", bad, status=400)
    client.post("/api/v1/jobs", b'{"name": "x", ' + b" " * 2_000_000 + b"}", content_type="application/json",
                status=413)
    client.post_json("/api/v1/taskmanagers", {"id": "tm-1", "slots": -1}, status=400)
    assert (count_rows(database, "jobs"), count_rows(database, "task_assignments"),
            count_rows(database, "taskmanagers")) == (0, 0, 0)


def test_registered_taskmanager_gets_tasks_and_is_declared_lost_without_heartbeats(started):
    client, service, database = started
    job_id = client.post_json("/api/v1/jobs", JOB, status=201).json["job_id"]
    assert client.post_json("/api/v1/taskmanagers", {"id": "tm-a", "slots": 4}, status=201).json[
        "taskmanager_id"] == "tm-a"
    client.post_json("/api/v1/taskmanagers", {"id": "tm-a", "slots": 4}, status=200)

    def assignments():
        return client.post_json("/api/v1/taskmanagers/tm-a/heartbeat", {"slots": 4, "tasks": []}).json["assignments"]

    eventually(lambda: len(assignments()) == 2)
    tasks = assignments()
    assert [(a["job_id"], a["task_index"], a["attempt"], a["restore"]) for a in tasks] == [
        (job_id, 0, 0, None), (job_id, 1, 0, None)]
    listed = client.get("/api/v1/taskmanagers").json["taskmanagers"]
    assert [(t["taskmanager_id"], t["slots"], t["used_slots"]) for t in listed] == [("tm-a", 4, 2)]
    eventually(lambda: client.get("/api/v1/taskmanagers").json["taskmanagers"] == [])  # timeout is 1 s
    job = client.get(f"/api/v1/jobs/{job_id}").json
    assert job["state"] == "restarting"
    assert [(t["taskmanager_id"], t["attempt"]) for t in job["tasks"]] == [(None, 1), (None, 1)]
    assert database.execute("SELECT count(*) FROM taskmanagers").fetchone() == (0,)
    assert 'sp_taskmanagers_lost_total 1.0' in client.get("/metrics").text


def test_database_outage_is_503_on_health_and_writes_without_partial_state(started, postgres_server):
    client, service, _database = started
    postgres_server.stop()
    try:
        eventually(lambda: client.get("/health", expect_errors=True).status_int == 503)
        body = client.get("/health", status=503).json
        assert body["checks"]["database"]["status"] == "failing"
        assert client.get("/health/live").json["status"] == "alive"
        # Losing the session that holds the leader lock is losing leadership: no more scheduling or writes.
        eventually(lambda: client.get("/health", expect_errors=True).json["role"] == "follower")
        assert "nothing was changed" in client.post_json("/api/v1/jobs", JOB, status=503).json["error"]
        assert service.resources.jobs == {}
        metrics = client.get("/metrics").text
        assert "sp_database_up 0.0" in metrics and "sp_jobmanager_leader 0.0" in metrics
    finally:
        postgres_server.start()
    eventually(lambda: (response := client.get("/health", expect_errors=True)).status_int == 200
               and response.json["role"] == "leader")
    client.post_json("/api/v1/jobs", JOB, status=201)


def test_missing_bucket_is_a_clear_warning_and_a_degraded_health(
    tmp_path, postgres_server, postgres_database, gcs_emulator, monkeypatch, caplog
):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    if not gcs_emulator.running:
        gcs_emulator.start()
    service = JobManagerService(jobmanager_config(tmp_path, postgres_server, postgres_database, "no-such-bucket"))
    with caplog.at_level(logging.WARNING, logger="stream_processing"):
        service.start()
    try:
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("'no-such-bucket' does not exist" in message and str(tmp_path) in message for message in warnings)
        client = TestApp(create_app(service.config, service))
        body = client.get("/health").json
        assert body["status"] == "degraded"
        assert body["checks"]["checkpoint_storage"]["mode"] == "local"
        assert "does not exist" in body["checks"]["checkpoint_storage"]["error"]
    finally:
        service.shutdown()
