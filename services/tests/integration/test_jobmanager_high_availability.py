"""Two JobManagers as real processes: one leads, the standby forwards the API and takes over on failure."""

from __future__ import annotations

import os
import signal
import time

import pytest

from platform_harness import (
    PARTITIONS,
    Events,
    assert_exact_results,
    produce,
    produce_end_of_input,
    wait_for,
    window_count_job,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def health(platform, jobmanager) -> tuple[int, dict]:
    response = platform.session.get(f"{jobmanager.url}/health", timeout=2)
    return response.status_code, response.json()


def leads(platform, jobmanager) -> bool:
    return platform.role(jobmanager) == "leader"


def start_pair(platform):
    """jm-0 first, so it wins the election; jm-1 joins as the standby."""
    leader = platform.jobmanager.start()
    wait_for(lambda: leads(platform, leader), 10, "jm-0 to lead")
    standby = platform.add_jobmanager("jm-1").start()
    wait_for(lambda: health(platform, standby)[1]["leader_id"] == "jm-0", 10, "jm-1 to know the leader")
    return leader, standby


def test_standby_forwards_the_api_and_takes_over_a_running_job_when_the_leader_is_killed(
        make_platform, topics, kafka_broker, postgres_server, postgres_database, record_property):
    source, sink, reader = topics
    platform = make_platform()
    leader, standby = start_pair(platform)
    # Clients and TaskManagers reach the JobManagers through the standby, as through a Service that keeps
    # only live endpoints once the leader is gone: before the failure every call is forwarded.
    platform.jobmanager_url = standby.url
    for index in range(3):
        platform.start_taskmanager(f"tm-{index}")
    wait_for(lambda: len(platform.get("/api/v1/taskmanagers")["taskmanagers"]) == 3, 20, "TaskManagers to register")

    status, standby_health = health(platform, standby)
    assert status == 200
    assert (standby_health["role"], standby_health["leader_id"], standby_health["jobmanager_id"]) == (
        "follower", "jm-0", "jm-1")
    assert standby_health["checks"]["resource_manager"]["status"] == "ok"
    assert standby_health["checks"]["resource_manager"]["state"] == "standby"
    assert platform.session.get(f"{standby.url}/health/ready", timeout=2).status_code == 200
    assert health(platform, leader)[1]["role"] == "leader"
    assert (platform.metric("sp_jobmanager_leader", base=leader.url),
            platform.metric("sp_jobmanager_leader", base=standby.url)) == (1, 0)
    with postgres_server.connect(postgres_database) as connection:
        assert connection.execute("SELECT leader_id, advertised_url FROM jobmanager_leader").fetchall() == [
            ("jm-0", leader.url)]

    submitted = platform.session.post(f"{standby.url}/api/v1/jobs", json=window_count_job(source, sink, 3), timeout=5)
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.headers["Location"] == f"/api/v1/jobs/{job_id}"
    assert submitted.headers["Content-Type"] == "application/json"
    assert submitted.headers["X-SP-Leader"] == "jm-0"
    # The leader's errors come back unchanged.
    rejected = platform.session.post(f"{standby.url}/api/v1/jobs", json={"name": ""}, timeout=5)
    assert rejected.status_code == 400 and rejected.json()["problems"]
    missing = platform.session.get(f"{standby.url}/api/v1/jobs/0b7c4a8e-1d2f-4c3b-9a8e-5f6d7c8b9a0e", timeout=5)
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]

    job = platform.wait_for_running(job_id)
    placement = [task["taskmanager_id"] for task in job["tasks"]]
    events = Events.generate(9000)
    produce(kafka_broker.bootstrap, source, events.records[:3000])
    last_before = platform.wait_for_checkpoint_after(job_id, 1)["checkpoint_id"]

    killed_at = time.monotonic()
    leader.kill()

    wait_for(lambda: platform.leads_and_serves_the_api(standby), 15, "jm-1 to take over", interval=0.02)
    failover_seconds = time.monotonic() - killed_at
    record_property("failover_seconds", round(failover_seconds, 3))
    print(f"failover: leader SIGKILL -> standby leading and serving the API in {failover_seconds:.3f} s")

    produce(kafka_broker.bootstrap, source, events.records[3000:6000])
    job = platform.wait_for_running(job_id)
    # The new leader resumed from the database: the tasks kept running where they were.
    assert [task["taskmanager_id"] for task in job["tasks"]] == placement
    assert job["restarts"] == 0
    assert all(task["attempt"] == 0 and task["restored_from_checkpoint"] is None for task in job["tasks"])
    resumed = platform.wait_for_checkpoint_after(job_id, last_before)
    assert resumed["checkpoint_id"] > last_before
    assert len(platform.get("/api/v1/taskmanagers")["taskmanagers"]) == 3
    assert platform.metric("sp_jobmanager_leader", base=standby.url) == 1
    with postgres_server.connect(postgres_database) as connection:
        assert connection.execute("SELECT leader_id, term FROM jobmanager_leader").fetchall() == [("jm-1", 2)]

    produce(kafka_broker.bootstrap, source, events.records[6000:])
    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)


def test_leader_sigterm_releases_leadership_to_the_standby_at_once(
    make_platform, postgres_server, postgres_database, record_property
):
    platform = make_platform(SP_LEADER_POLL_SECONDS="0.25")
    leader, standby = start_pair(platform)
    platform.jobmanager_url = standby.url
    job_id = platform.submit(window_count_job("events", "counts", parallelism=2))

    stopping_at = time.monotonic()
    os.kill(leader.pid, signal.SIGTERM)
    wait_for(lambda: leads(platform, standby), 5, "jm-1 to lead", interval=0.02)
    handover_seconds = time.monotonic() - stopping_at
    assert leader.stop() == 0  # SIGTERM again is ignored while draining; the exit stays clean
    record_property("handover_seconds", round(handover_seconds, 3))
    print(f"handover: leader SIGTERM -> standby leading in {handover_seconds:.3f} s")
    log = leader.log_tail(30)
    assert "leadership released" in log and "JobManager stopped" in log
    # State written under the old leader is what the new one serves.
    assert platform.job(job_id)["state"] == "scheduled"
    with postgres_server.connect(postgres_database) as connection:
        assert connection.execute("SELECT leader_id FROM jobmanager_leader").fetchall() == [("jm-1",)]

    # The restarted JobManager becomes the standby of the new leader.
    leader.start()
    wait_for(lambda: health(platform, leader)[1]["leader_id"] == "jm-1", 10, "jm-0 to follow jm-1")
    status, document = health(platform, leader)
    assert (status, document["role"]) == (200, "follower")
    forwarded = platform.session.get(f"{leader.url}/api/v1/jobs/{job_id}", timeout=5)
    assert (forwarded.status_code, forwarded.json()["job_id"]) == (200, job_id)
    assert forwarded.headers["X-SP-Leader"] == "jm-1"
