"""Runs a JobManager and TaskManagers as real waitress processes against real PostgreSQL, Kafka and GCS."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests
from confluent_kafka import Consumer, Producer
from tests.support.processes import ManagedProcess, free_loopback_port

WINDOW_MS = 1000
USERS = [f"user-{n}" for n in range(8)]
END_OF_INPUT = 2**62  # later than any event time
PARTITIONS = 6


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Polls predicate until it returns a truthy value; fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, KeyError, IndexError) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error!r})")


@dataclass
class Events:
    """A known input: click and view events per user in event-time order, and the true click counts."""

    records: list[dict]

    @classmethod
    def generate(cls, count: int, start_ts: int = 1_700_000_000_000) -> Events:
        records = [
            {"user_id": USERS[(i * 7) % len(USERS)], "kind": "view" if i % 5 == 0 else "click", "ts": start_ts + i * 4,
             "seq": i}
            for i in range(count)
        ]
        return cls(records)

    def expected_counts(self) -> dict[tuple[int, str], int]:
        counts = Counter(
            (r["ts"] - r["ts"] % WINDOW_MS, r["user_id"]) for r in self.records if r["kind"] == "click"
        )
        return dict(counts)


def window_count_job(source: str, sink: str, parallelism: int) -> dict:
    return {
        "name": "clicks per user per second",
        "parallelism": parallelism,
        "source": {"topic": source, "start": "earliest"},
        "sink": {"topic": sink},
        "operators": [
            {"type": "filter", "field": "kind", "op": "eq", "value": "click"},
            {"type": "map", "fields": {"user": "user_id", "ts": "ts"}},
            {"type": "tumbling_window", "key_field": "user", "time_field": "ts", "size_ms": WINDOW_MS},
        ],
    }


def produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for record in records:
        producer.produce(topic, key=record["user_id"], value=json.dumps(record))
        producer.poll(0)
    assert producer.flush(30) == 0


def produce_end_of_input(bootstrap: str, topic: str, partitions: int) -> None:
    """A watermark marker on every partition closes every remaining window."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in range(partitions):
        producer.produce(topic, value=json.dumps({"_watermark": END_OF_INPUT}), partition=partition)
    assert producer.flush(30) == 0


class SinkReader:
    """Reads window results from the sink topic; keeps every emission per deterministic key."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.emissions: dict[str, list[dict]] = {}

    def poll(self, seconds: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in self.consumer.consume(1000, 0.1):
                if message.error() is None:
                    self.emissions.setdefault(message.key().decode(), []).append(json.loads(message.value()))

    def final_counts(self, job_id: str) -> dict[tuple[int, str], int]:
        """The last value per key, as an upsert or a compacted topic would keep it."""
        results = {}
        for key, values in self.emissions.items():
            key_job, window_start, user = json.loads(key)
            assert key_job == job_id
            results[(window_start, user)] = values[-1]["count"]
        return results

    def wait_for_counts(self, job_id: str, expected: dict, timeout: float) -> dict:
        def complete():
            self.poll()
            return self.final_counts(job_id).keys() >= expected.keys()

        try:
            wait_for(complete, timeout, f"{len(expected)} window results")
        except AssertionError as error:
            received = self.final_counts(job_id)
            missing = sorted(expected.keys() - received.keys())
            raise AssertionError(f"{error}; received {len(received)}, missing e.g. {missing[:5]}") from None
        return self.final_counts(job_id)

    def close(self) -> None:
        self.consumer.close()


class Platform:
    """One JobManager and N TaskManagers; each test gets its own database, topics and checkpoint dirs."""

    def __init__(self, workdir: Path, *, database_url: str, database_password: str, kafka_bootstrap: str,
                 gcs_endpoint: str, bucket: str, **settings: str):
        self.workdir = workdir
        self.jobmanager_port = free_loopback_port()
        self.jobmanager_url = f"http://127.0.0.1:{self.jobmanager_port}"
        self.env = {
            **os.environ,
            "SP_HTTP_HOST": "127.0.0.1",
            "SP_DATABASE_URL": database_url,
            "SP_DATABASE_PASSWORD": database_password,
            "SP_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SP_GCS_BUCKET": bucket,
            "SP_GCS_PREFIX": "checkpoints",
            "STORAGE_EMULATOR_HOST": gcs_endpoint,
            "SP_GCS_TIMEOUT_SECONDS": "1",
            "SP_STORAGE_PROBE_INTERVAL_SECONDS": "0.5",
            "SP_CHECKPOINT_INTERVAL_SECONDS": "1",
            "SP_CHECKPOINT_TIMEOUT_SECONDS": "10",
            "SP_CHECKPOINT_RETAINED": "3",
            "SP_HEARTBEAT_INTERVAL_SECONDS": "0.25",
            "SP_HEARTBEAT_TIMEOUT_SECONDS": "2",
            "SP_SHUTDOWN_GRACE_SECONDS": "10",
            "SP_TASKMANAGER_SLOTS": "2",
            "SP_LOG_LEVEL": "INFO",
            "SP_LEADER_POLL_SECONDS": "0.25",
            **settings,
        }
        self.session = requests.Session()
        self.jobmanagers: dict[str, ManagedProcess] = {}
        self.jobmanager = self.add_jobmanager("jm-0", self.jobmanager_port)
        self.taskmanagers: dict[str, ManagedProcess] = {}

    def add_jobmanager(self, name: str, port: int | None = None) -> ManagedProcess:
        """A JobManager process (not started); the first one started leads, later ones are standbys."""
        port = port or free_loopback_port()
        url = f"http://127.0.0.1:{port}"
        process = self._process(name, {"SP_ROLE": "jobmanager", "SP_HTTP_PORT": str(port), "SP_JOBMANAGER_ID": name,
                                       "SP_CHECKPOINT_DIR": str(self.workdir / name)}, url=url)
        process.url = url
        self.jobmanagers[name] = process
        return process

    def _process(self, name: str, env: dict, url: str | None = None) -> ManagedProcess:
        url = url or self.jobmanager_url
        return ManagedProcess(
            name, [sys.executable, "-m", "stream_processing"], log_path=self.workdir / f"{name}.log",
            env={**self.env, **env}, ready=lambda: self.session.get(f"{url}/health/ready", timeout=1).ok,
            ready_timeout=60, stop_timeout=20,
        )

    def start(self, taskmanagers: int = 3) -> Platform:
        self.jobmanager.start()
        for index in range(taskmanagers):
            self.start_taskmanager(f"tm-{index}")
        wait_for(lambda: len(self.get("/api/v1/taskmanagers")["taskmanagers"]) == taskmanagers, 20,
                 "TaskManagers to register")
        return self

    def start_taskmanager(self, name: str) -> ManagedProcess:
        port = free_loopback_port()
        process = self._process(name, {
            "SP_ROLE": "taskmanager", "SP_HTTP_PORT": str(port), "SP_TASKMANAGER_ID": name,
            "SP_JOBMANAGER_URL": self.jobmanager_url, "SP_CHECKPOINT_DIR": str(self.workdir / name / "checkpoints"),
        }, url=f"http://127.0.0.1:{port}")
        process.url = f"http://127.0.0.1:{port}"
        self.taskmanagers[name] = process
        return process.start()

    def stop(self) -> None:
        for process in self.taskmanagers.values():
            process.stop()
        for process in self.jobmanagers.values():
            process.stop()
        self.session.close()

    def logs(self) -> str:
        processes = [*self.jobmanagers.values(), *self.taskmanagers.values()]
        return "\n".join(f"== {p.name}\n{p.log_tail(30)}" for p in processes)

    # API ---------------------------------------------------------------------------------------
    def get(self, path: str, base: str | None = None) -> dict:
        response = self.session.get(f"{base or self.jobmanager_url}{path}", timeout=5)
        response.raise_for_status()
        return response.json()

    def submit(self, spec: dict) -> str:
        response = self.session.post(f"{self.jobmanager_url}/api/v1/jobs", json=spec, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/v1/jobs/{job_id}")

    def checkpoints(self, job_id: str) -> list[dict]:
        return self.get(f"/api/v1/jobs/{job_id}/checkpoints")["checkpoints"]

    def completed_checkpoints(self, job_id: str) -> list[dict]:
        return [c for c in self.checkpoints(job_id) if c["state"] == "completed"]

    def wait_for_running(self, job_id: str, timeout: float = 30) -> dict:
        return wait_for(lambda: (job := self.job(job_id))["state"] == "running" and all(
            t["status"] == "running" for t in job["tasks"]) and job, timeout, f"job {job_id} to run")

    def wait_for_checkpoint_after(self, job_id: str, checkpoint_id: int, timeout: float = 30,
                                  storage: str | None = None) -> dict:
        def newer():
            for checkpoint in self.completed_checkpoints(job_id):
                storages = {piece["storage"] for piece in checkpoint["pieces"]}
                if checkpoint["checkpoint_id"] > checkpoint_id and (storage is None or storages == {storage}):
                    return checkpoint
            return None

        return wait_for(newer, timeout, f"a completed checkpoint after {checkpoint_id} ({storage or 'any'})")

    def records_in(self, job_id: str) -> int:
        return sum(task["records_in"] for task in self.job(job_id)["tasks"])

    def role(self, jobmanager: ManagedProcess) -> str:
        return self.get("/health", base=jobmanager.url)["role"]

    def leads_and_serves_the_api(self, jobmanager: ManagedProcess) -> bool:
        """The JobManager answers /api/v1 itself (not forwarded: no X-SP-Leader header) and says it leads."""
        answer = self.session.get(f"{jobmanager.url}/api/v1/jobs", timeout=2)
        return answer.status_code == 200 and "X-SP-Leader" not in answer.headers and self.role(jobmanager) == "leader"

    def metric(self, name: str, base: str | None = None) -> float:
        text = self.session.get(f"{base or self.jobmanager_url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


def assert_exact_results(reader: SinkReader, job_id: str, events: Events, platform: Platform) -> None:
    expected = events.expected_counts()
    try:
        actual = reader.wait_for_counts(job_id, expected, timeout=60)
    except AssertionError:
        print(platform.logs())
        print(platform.job(job_id))
        raise
    assert actual == expected
    # Replays after a restore re-emit the same value under the same key: nothing lost, nothing counted twice.
    for key, values in reader.emissions.items():
        assert len({v["count"] for v in values}) == 1, (key, values)
