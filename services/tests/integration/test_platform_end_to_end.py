"""JobManager + 3 TaskManagers as real processes: failover, GCS outage and JobManager restart."""

from __future__ import annotations

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


def test_lost_taskmanager_is_rescheduled_and_restored_without_losing_windows(make_platform, topics, kafka_broker):
    source, sink, reader = topics
    platform = make_platform().start(taskmanagers=3)
    job_id = platform.submit(window_count_job(source, sink, parallelism=3))
    job = platform.wait_for_running(job_id)
    assert {task["taskmanager_id"] for task in job["tasks"]} == {"tm-0", "tm-1", "tm-2"}

    events = Events.generate(9000)
    first, second = events.records[:4500], events.records[4500:]
    produce(kafka_broker.bootstrap, source, first)
    wait_for(lambda: platform.records_in(job_id) >= len(first), 30, "the first half to be read")
    before_kill = platform.wait_for_checkpoint_after(job_id, 0)["checkpoint_id"]
    before_kill = platform.wait_for_checkpoint_after(job_id, before_kill)["checkpoint_id"]

    victim_task = next(task for task in platform.job(job_id)["tasks"] if task["taskmanager_id"] == "tm-1")
    platform.taskmanagers["tm-1"].kill()
    produce(kafka_broker.bootstrap, source, second)

    def rescheduled():
        job = platform.job(job_id)
        task = job["tasks"][victim_task["task_index"]]
        return task["taskmanager_id"] in ("tm-0", "tm-2") and task["status"] == "running" and job
    job = wait_for(rescheduled, 30, "the lost task to run elsewhere")
    task = job["tasks"][victim_task["task_index"]]
    assert job["restarts"] >= 1
    assert task["attempt"] == victim_task["attempt"] + 1
    completed_ids = {c["checkpoint_id"] for c in platform.completed_checkpoints(job_id)}
    assert task["restored_from_checkpoint"] >= before_kill
    assert task["restored_from_checkpoint"] in completed_ids | set(range(before_kill, before_kill + 3))
    assert platform.metric("sp_job_restarts_total") >= 1
    assert platform.metric("sp_taskmanagers_registered") == 2

    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)
    retained = platform.completed_checkpoints(job_id)
    assert len(retained) <= 3
    assert all(len(c["pieces"]) == 3 for c in retained)


def test_gcs_outage_degrades_to_local_checkpoints_and_recovers(make_platform, topics, kafka_broker,
                                                               isolated_gcs_emulator):
    source, sink, reader = topics
    emulator = isolated_gcs_emulator
    bucket = emulator.create_bucket()
    platform = make_platform(bucket=bucket, endpoint=emulator.endpoint, SP_CHECKPOINT_RETAINED="50").start()
    job_id = platform.submit(window_count_job(source, sink, parallelism=3))
    platform.wait_for_running(job_id)
    events = Events.generate(9000)
    thirds = [events.records[i:i + 3000] for i in range(0, 9000, 3000)]

    produce(kafka_broker.bootstrap, source, thirds[0])
    in_gcs = platform.wait_for_checkpoint_after(job_id, 0, storage="gcs")
    assert all(p["location"].startswith(f"gs://{bucket}/checkpoints/{job_id}/chk-") for p in in_gcs["pieces"])
    assert platform.get("/health")["checks"]["checkpoint_storage"]["status"] == "ok"

    emulator.stop()
    produce(kafka_broker.bootstrap, source, thirds[1])
    local = platform.wait_for_checkpoint_after(job_id, in_gcs["checkpoint_id"], storage="local")
    assert all(p["location"].startswith(f"file://{platform.workdir}/tm-") for p in local["pieces"])
    health = platform.session.get(f"{platform.jobmanager_url}/health", timeout=5)
    assert health.status_code == 200
    storage_check = health.json()["checks"]["checkpoint_storage"]
    assert (health.json()["status"], storage_check["status"], storage_check["mode"]) == (
        "degraded",
        "degraded",
        "local",
    )
    assert platform.metric("sp_checkpoint_local_fallbacks_total") >= 3
    assert platform.metric("sp_checkpoint_storage_degraded") == 1
    taskmanager = platform.taskmanagers["tm-0"].url
    assert platform.get("/health", base=taskmanager)["checks"]["checkpoint_storage"]["status"] == "degraded"
    assert platform.metric("sp_checkpoint_local_fallbacks_total", base=taskmanager) >= 1

    emulator.start()
    after = platform.wait_for_checkpoint_after(job_id, local["checkpoint_id"], storage="gcs")
    wait_for(lambda: platform.get("/health")["checks"]["checkpoint_storage"]["status"] == "ok", 30,
             "storage to be healthy again")
    assert platform.metric("sp_checkpoint_storage_degraded") == 0

    # Local pieces of retained checkpoints were uploaded and their metadata now points at GCS.
    def relocated():
        checkpoint = next(c for c in platform.checkpoints(job_id) if c["checkpoint_id"] == local["checkpoint_id"])
        return all(p["storage"] == "gcs" for p in checkpoint["pieces"]) and checkpoint
    moved = wait_for(relocated, 30, f"checkpoint {local['checkpoint_id']} to be uploaded")
    objects = set(emulator.list_objects(bucket))
    for piece in moved["pieces"] + after["pieces"]:
        assert piece["location"].removeprefix(f"gs://{bucket}/") in objects
    local_dirs = [platform.workdir / name / "checkpoints" for name in platform.taskmanagers]
    wait_for(lambda: not any(any(d.rglob("*.json")) for d in local_dirs), 30, "local pieces to be uploaded and removed")

    # A restore after the outage reads the piece from where the metadata says it is.
    victim = next(t for t in platform.job(job_id)["tasks"] if t["taskmanager_id"] == "tm-2")
    platform.taskmanagers["tm-2"].kill()
    produce(kafka_broker.bootstrap, source, thirds[2])
    job = wait_for(lambda: (j := platform.job(job_id))["tasks"][victim["task_index"]]["status"] == "running"
                   and j["tasks"][victim["task_index"]]["taskmanager_id"] != "tm-2" and j, 30, "the restore")
    restored_from = job["tasks"][victim["task_index"]]["restored_from_checkpoint"]
    assert restored_from >= after["checkpoint_id"]
    log = platform.jobmanager.log_tail(400)
    assert f'"checkpoint_id": {restored_from}, "location": "gs://{bucket}/' in log
    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)


def test_jobmanager_restart_resumes_jobs_from_the_database(make_platform, topics, kafka_broker):
    source, sink, reader = topics
    platform = make_platform().start()
    job_id = platform.submit(window_count_job(source, sink, parallelism=3))
    platform.wait_for_running(job_id)
    events = Events.generate(9000)
    produce(kafka_broker.bootstrap, source, events.records[:3000])
    last_before = platform.wait_for_checkpoint_after(job_id, 1)["checkpoint_id"]
    placement = [t["taskmanager_id"] for t in platform.job(job_id)["tasks"]]

    platform.jobmanager.kill()
    produce(kafka_broker.bootstrap, source, events.records[3000:6000])
    platform.jobmanager.start()
    job = platform.wait_for_running(job_id)
    # The tasks kept running where they were: nothing was rescheduled or restored.
    assert [t["taskmanager_id"] for t in job["tasks"]] == placement
    assert job["restarts"] == 0
    assert all(t["attempt"] == 0 and t["restored_from_checkpoint"] is None for t in job["tasks"])
    assert job["last_completed_checkpoint_id"] >= last_before
    resumed = platform.wait_for_checkpoint_after(job_id, last_before)
    assert resumed["checkpoint_id"] > last_before
    failed = [c for c in platform.checkpoints(job_id) if c["state"] == "failed"]
    assert all(c["failure_reason"] == "JobManager restarted" for c in failed)
    assert len(platform.get("/api/v1/taskmanagers")["taskmanagers"]) == 3

    produce(kafka_broker.bootstrap, source, events.records[6000:])
    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)


def test_sigterm_takes_a_final_checkpoint_and_hands_tasks_over(make_platform, topics, kafka_broker):
    source, sink, reader = topics
    platform = make_platform(SP_CHECKPOINT_INTERVAL_SECONDS="30").start()
    job_id = platform.submit(window_count_job(source, sink, parallelism=3))
    platform.wait_for_running(job_id)
    events = Events.generate(6000)
    produce(kafka_broker.bootstrap, source, events.records[:3000])
    wait_for(lambda: platform.records_in(job_id) >= 3000, 30, "the first half to be read")
    leaving = platform.taskmanagers["tm-1"]
    task_index = next(t["task_index"] for t in platform.job(job_id)["tasks"] if t["taskmanager_id"] == "tm-1")

    assert leaving.stop() == 0  # SIGTERM, then a clean exit within the grace period
    log = leaving.log_tail(200)
    assert "received SIGTERM; draining" in log
    assert "TaskManager stopped" in log
    final = platform.completed_checkpoints(job_id)[0]
    assert {p["task_index"] for p in final["pieces"]} == {0, 1, 2}
    job = wait_for(lambda: (j := platform.job(job_id))["tasks"][task_index]["status"] == "running" and j, 20,
                   "the task to move")
    moved = job["tasks"][task_index]
    # Handed over at once (deregistered, not timed out) and restored from the shutdown checkpoint.
    assert moved["taskmanager_id"] in ("tm-0", "tm-2")
    assert moved["restored_from_checkpoint"] == final["checkpoint_id"]
    assert "deregistered" in platform.jobmanager.log_tail(400)

    produce(kafka_broker.bootstrap, source, events.records[3000:])
    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)
    assert platform.jobmanager.stop() == 0
    assert "JobManager stopped" in platform.jobmanager.log_tail(20)


def test_unreadable_piece_falls_back_to_an_older_checkpoint(make_platform, topics, kafka_broker, gcs_emulator,
                                                            gcs_bucket):
    source, sink, reader = topics
    platform = make_platform(SP_HEARTBEAT_TIMEOUT_SECONDS="4").start()
    job_id = platform.submit(window_count_job(source, sink, parallelism=3))
    platform.wait_for_running(job_id)
    events = Events.generate(6000)
    produce(kafka_broker.bootstrap, source, events.records[:3000])
    wait_for(lambda: platform.records_in(job_id) >= 3000, 30, "the first half to be read")
    platform.wait_for_checkpoint_after(job_id, 2)
    task_index = next(t["task_index"] for t in platform.job(job_id)["tasks"] if t["taskmanager_id"] == "tm-1")

    platform.taskmanagers["tm-1"].kill()
    time.sleep(1.5)  # a checkpoint the killed task already reported may still complete
    latest = platform.completed_checkpoints(job_id)[0]
    piece = next(p for p in latest["pieces"] if p["task_index"] == task_index)
    gcs_emulator.client().bucket(gcs_bucket).blob(piece["location"].removeprefix(f"gs://{gcs_bucket}/")).delete()

    def restored():
        task = platform.job(job_id)["tasks"][task_index]
        return task["status"] == "running" and task["taskmanager_id"] != "tm-1" and task
    task = wait_for(restored, 40, "a restore from an older checkpoint")
    assert task["restored_from_checkpoint"] < latest["checkpoint_id"]
    assert f"restore from checkpoint {latest['checkpoint_id']} failed" in platform.jobmanager.log_tail(600)

    produce(kafka_broker.bootstrap, source, events.records[3000:])
    produce_end_of_input(kafka_broker.bootstrap, source, PARTITIONS)
    assert_exact_results(reader, job_id, events, platform)
