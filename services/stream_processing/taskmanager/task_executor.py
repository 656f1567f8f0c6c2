"""Runs assigned tasks: Kafka source -> operator chain -> (tumbling window) -> Kafka sink, with checkpoints.

Each task owns the source partitions p with p % parallelism == task_index. Between poll batches it
answers checkpoint requests: it flushes the sink (so every output derived from input before the
snapshot offsets is stored), snapshots window state and source offsets, writes the piece through
CheckpointStorage and queues a report for the next heartbeat. Restores start from a piece's
offsets, which gives at-least-once delivery; window results carry the deterministic key
[job_id, window_start, key], so replayed results overwrite themselves in an upsert or compacted topic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from stream_processing.checkpoint_storage import STORAGE_LOCAL, CheckpointStorage, CheckpointStorageError, piece_name
from stream_processing.taskmanager.operators import OperatorChain
from stream_processing.taskmanager.windowing import TumblingWindowAggregator

log = logging.getLogger(__name__)
# librdkafka's own messages go through logging, so they are JSON lines like everything else.
kafka_log = logging.getLogger("librdkafka")

POLL_BATCH = 1000
POLL_TIMEOUT_SECONDS = 0.1
SINK_FLUSH_TIMEOUT_SECONDS = 30.0
PIECE_FORMAT = 1


class TaskError(Exception):
    """The task cannot continue; the JobManager reschedules it from the last completed checkpoint."""


@dataclass
class Assignment:
    job_id: str
    task_index: int
    parallelism: int
    attempt: int
    spec: dict
    restore: dict | None = None

    @classmethod
    def from_json(cls, document: dict) -> Assignment:
        return cls(document["job_id"], document["task_index"], document["parallelism"], document["attempt"],
                   document["spec"], document.get("restore"))

    @property
    def task_key(self) -> tuple[str, int]:
        return self.job_id, self.task_index


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.records_in = Counter("sp_task_records_in", "Source records read", registry=registry)
        self.records_out = Counter("sp_task_records_out", "Records written to sinks", registry=registry)
        self.records_dropped = Counter(
            "sp_task_records_dropped", "Records dropped by reason", ["reason"], registry=registry
        )
        self.pieces = Counter(
            "sp_checkpoint_pieces_written", "Checkpoint pieces written by storage", ["storage"], registry=registry
        )
        self.local_fallbacks = Counter(
            "sp_checkpoint_local_fallbacks", "Checkpoint pieces written to the local directory", registry=registry
        )
        self.restores = Counter("sp_task_restores", "Tasks started from a checkpoint piece", registry=registry)
        self.failures = Counter("sp_task_failures", "Tasks that stopped with an error", registry=registry)
        self.tasks_running = Gauge("sp_tasks_running", "Tasks running in this TaskManager", registry=registry)


@dataclass
class TaskProgress:
    status: str = "starting"
    error: str | None = None
    restore_failed_checkpoint: int | None = None
    records_in: int = 0
    records_out: int = 0
    last_checkpoint_id: int = 0
    offsets: dict = field(default_factory=dict)


class TaskRunner(threading.Thread):
    def __init__(self, assignment: Assignment, kafka_bootstrap: str, storage: CheckpointStorage,
                 metrics: TaskMetrics, report_piece):
        super().__init__(name=f"task-{assignment.job_id[:8]}-{assignment.task_index}", daemon=True)
        self.assignment = assignment
        self.kafka_bootstrap = kafka_bootstrap
        self.storage = storage
        self.metrics = metrics
        self.report_piece = report_piece
        self.progress = TaskProgress()
        self.requested_checkpoint = 0
        self.stop_requested = threading.Event()
        self._delivery_error: str | None = None
        spec = assignment.spec
        self.source_topic = spec["source"]["topic"]
        self.sink_topic = spec["sink"]["topic"]
        stateless = [op for op in spec.get("operators", []) if op["type"] != "tumbling_window"]
        windows = [op for op in spec.get("operators", []) if op["type"] == "tumbling_window"]
        self.chain = OperatorChain(stateless)
        self.window = None
        if windows:
            window = windows[0]
            self.window = TumblingWindowAggregator(
                window["key_field"], window["time_field"], window["size_ms"], window.get("sum_field"),
                window.get("idle_timeout_ms"),
            )

    def request_checkpoint(self, checkpoint_id: int) -> None:
        if checkpoint_id > self.requested_checkpoint:
            self.requested_checkpoint = checkpoint_id

    def stop(self) -> None:
        self.stop_requested.set()

    def run(self) -> None:
        self.metrics.tasks_running.inc()
        consumer = producer = None
        try:
            state = self._load_restore_state()
            consumer = Consumer({
                "bootstrap.servers": self.kafka_bootstrap,
                "group.id": f"sp-{self.assignment.job_id}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "auto.offset.reset": "earliest",
                "logger": kafka_log,
            })
            producer = Producer({
                "bootstrap.servers": self.kafka_bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "logger": kafka_log,
            })
            self._assign_partitions(consumer, state)
            self.progress.status = "running"
            log.info("task running", extra=self._log_fields())
            self._process(consumer, producer)
            self._flush(producer)
            self.progress.status = "stopped"
        except Exception as error:  # noqa: BLE001 - any failure is reported to the JobManager
            self.metrics.failures.inc()
            self.progress.status = "failed"
            self.progress.error = f"{type(error).__name__}: {error}"
            log.error("task failed: %s", self.progress.error, extra=self._log_fields())
        finally:
            if consumer is not None:
                consumer.close()
            self.metrics.tasks_running.dec()

    def _log_fields(self) -> dict:
        return {"job_id": self.assignment.job_id, "task_index": self.assignment.task_index,
                "attempt": self.assignment.attempt}

    def _load_restore_state(self) -> dict | None:
        restore = self.assignment.restore
        if not restore:
            return None
        try:
            state = json.loads(self.storage.read_piece(restore["location"]))
        except (CheckpointStorageError, ValueError) as error:
            self.progress.restore_failed_checkpoint = restore["checkpoint_id"]
            raise TaskError(f"restore from checkpoint {restore['checkpoint_id']} failed: {error}") from error
        if self.window is not None and state.get("window"):
            self.window.restore(state["window"])
        self.metrics.restores.inc()
        self.progress.last_checkpoint_id = restore["checkpoint_id"]
        log.info("task restored", extra={**self._log_fields(), "checkpoint_id": restore["checkpoint_id"],
                                         "location": restore["location"]})
        return state

    def _assign_partitions(self, consumer: Consumer, state: dict | None) -> None:
        metadata = consumer.list_topics(self.source_topic, timeout=10)
        topic = metadata.topics.get(self.source_topic)
        if topic is None or topic.error is not None or not topic.partitions:
            reason = topic.error if topic is not None else "missing"
            raise TaskError(f"source topic {self.source_topic!r} is not available: {reason}")
        mine = sorted(p for p in topic.partitions if p % self.assignment.parallelism == self.assignment.task_index)
        saved = {int(p): offset for p, offset in (state or {}).get("source", {}).get("offsets", {}).items()}
        start = OFFSET_END if self.assignment.spec["source"].get("start") == "latest" else OFFSET_BEGINNING
        self.progress.offsets = {p: saved[p] for p in mine if p in saved}
        consumer.assign([TopicPartition(self.source_topic, p, saved.get(p, start)) for p in mine])
        if self.window is not None:
            self.window.set_partitions(mine)

    def _on_delivery(self, error, _message) -> None:
        if error is not None:
            self._delivery_error = str(error)

    def _produce(self, producer: Producer, key, value: dict) -> None:
        payload = json.dumps(value, separators=(",", ":"))
        while True:
            try:
                producer.produce(self.sink_topic, value=payload, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        self.progress.records_out += 1
        self.metrics.records_out.inc()

    def _process(self, consumer: Consumer, producer: Producer) -> None:
        job_id = self.assignment.job_id
        while not self.stop_requested.is_set():
            messages = consumer.consume(POLL_BATCH, POLL_TIMEOUT_SECONDS)
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                self._handle(producer, message)
            if messages:
                self.metrics.records_in.inc(len(messages))
            if self.window is not None:
                for result in self.window.pop_closed():
                    key = json.dumps([job_id, result.window_start, result.key], separators=(",", ":"))
                    self._produce(producer, key, {"job_id": job_id, **result.as_record()})
            producer.poll(0)
            if self._delivery_error:
                raise TaskError(f"sink topic {self.sink_topic!r} rejected a record: {self._delivery_error}")
            if self.requested_checkpoint > self.progress.last_checkpoint_id:
                self._checkpoint(producer, self.requested_checkpoint)

    def _handle(self, producer: Producer, message) -> None:
        partition = message.partition()
        self.progress.offsets[partition] = message.offset() + 1
        self.progress.records_in += 1
        try:
            record = json.loads(message.value())
        except (TypeError, ValueError):
            record = None
        if not isinstance(record, dict):
            self.metrics.records_dropped.labels("invalid").inc()
            return
        marker = record.get("_watermark")
        if marker is not None:
            if self.window is not None and isinstance(marker, int):
                self.window.observe_time(partition, marker)
            return
        output = self.chain(record)
        if output is None:
            self.metrics.records_dropped.labels("filtered").inc()
        elif self.window is None:
            self._produce(producer, message.key(), output)
        elif not self.window.add(partition, output):
            self.metrics.records_dropped.labels("late_or_invalid").inc()

    def _flush(self, producer: Producer) -> None:
        remaining = producer.flush(SINK_FLUSH_TIMEOUT_SECONDS)
        if remaining or self._delivery_error:
            raise TaskError(
                f"sink topic {self.sink_topic!r} did not confirm {remaining} records: "
                f"{self._delivery_error or 'timeout'}"
            )

    def _checkpoint(self, producer: Producer, checkpoint_id: int) -> None:
        started = time.monotonic()
        self._flush(producer)
        assignment = self.assignment
        piece = {
            "format": PIECE_FORMAT,
            "job_id": assignment.job_id,
            "checkpoint_id": checkpoint_id,
            "task_index": assignment.task_index,
            "attempt": assignment.attempt,
            "source": {"topic": self.source_topic, "offsets": {str(p): o for p, o in self.progress.offsets.items()}},
            "window": self.window.snapshot() if self.window is not None else None,
        }
        data = json.dumps(piece, separators=(",", ":")).encode()
        stored = self.storage.write_piece(
            piece_name(assignment.job_id, checkpoint_id, assignment.task_index, assignment.attempt), data
        )
        self.metrics.pieces.labels(stored.storage).inc()
        if stored.storage == STORAGE_LOCAL:
            self.metrics.local_fallbacks.inc()
        self.progress.last_checkpoint_id = checkpoint_id
        self.report_piece({
            "job_id": assignment.job_id,
            "checkpoint_id": checkpoint_id,
            "task_index": assignment.task_index,
            "attempt": assignment.attempt,
            "storage": stored.storage,
            "location": stored.location,
            "size_bytes": stored.size_bytes,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
        })


class TaskExecutor:
    """Keeps the running tasks equal to the JobManager's assignments and collects reports for heartbeats."""

    def __init__(self, kafka_bootstrap: str, storage: CheckpointStorage, registry: CollectorRegistry):
        self.kafka_bootstrap = kafka_bootstrap
        self.storage = storage
        self.metrics = TaskMetrics(registry)
        self._lock = threading.Lock()
        self.runners: dict[tuple[str, int], TaskRunner] = {}
        self._reports: list[dict] = []
        self._relocations: list[dict] = []
        self.report_ready = threading.Event()
        self.retained_checkpoints: dict[str, list[int]] | None = None  # None until the first heartbeat answer

    def _report_piece(self, report: dict) -> None:
        with self._lock:
            self._reports.append(report)
        self.report_ready.set()

    def queue_relocation(self, relocation: dict) -> None:
        with self._lock:
            self._relocations.append(relocation)
        self.report_ready.set()

    def heartbeat_body(self, slots: int) -> dict:
        with self._lock:
            runners = list(self.runners.values())
            reports = list(self._reports)
            relocations = list(self._relocations)
        tasks = []
        for runner in runners:
            progress = runner.progress
            tasks.append({
                "job_id": runner.assignment.job_id,
                "task_index": runner.assignment.task_index,
                "attempt": runner.assignment.attempt,
                "status": progress.status,
                "error": progress.error,
                "restore_failed_checkpoint": progress.restore_failed_checkpoint,
                "records_in": progress.records_in,
                "records_out": progress.records_out,
                "last_checkpoint_id": progress.last_checkpoint_id,
            })
        return {"slots": slots, "tasks": tasks, "checkpoint_reports": reports, "relocated_pieces": relocations}

    def acknowledge(self, sent: dict, recorded_relocations: list[str]) -> list[dict]:
        """Drops what a successful heartbeat delivered; returns the relocations the JobManager recorded."""
        recorded = [r for r in sent["relocated_pieces"] if r["from_location"] in recorded_relocations]
        with self._lock:
            self._reports = [r for r in self._reports if r not in sent["checkpoint_reports"]]
            self._relocations = [r for r in self._relocations if r not in recorded]
        return recorded

    def apply(self, response: dict) -> None:
        """Starts, restarts and stops tasks to match the assignments; forwards checkpoint requests."""
        wanted = {(a["job_id"], a["task_index"]): a for a in response["assignments"]}
        with self._lock:
            for task_key, runner in list(self.runners.items()):
                assignment = wanted.get(task_key)
                finished = not runner.is_alive()
                if assignment is None or assignment["attempt"] != runner.assignment.attempt or (
                    finished and runner.progress.status != "failed"
                ):
                    runner.stop()
                    del self.runners[task_key]
            for task_key, document in wanted.items():
                runner = self.runners.get(task_key)
                if runner is None:
                    runner = TaskRunner(Assignment.from_json(document), self.kafka_bootstrap, self.storage,
                                        self.metrics, self._report_piece)
                    self.runners[task_key] = runner
                    runner.start()
                if document.get("checkpoint_id"):
                    runner.request_checkpoint(document["checkpoint_id"])
            self.retained_checkpoints = response.get("retained_checkpoints", {})

    def job_ids(self) -> set[str]:
        with self._lock:
            return {job_id for job_id, _task_index in self.runners}

    def checkpointed_through(self, job_id: str) -> int:
        """Lowest checkpoint id every task of the job on this TaskManager has snapshotted."""
        with self._lock:
            ids = [r.progress.last_checkpoint_id for (j, _task_index), r in self.runners.items() if j == job_id]
        return min(ids, default=0)

    def has_unsent_reports(self) -> bool:
        with self._lock:
            return bool(self._reports)

    def stop_all(self, timeout: float) -> None:
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))

    def all_alive(self) -> bool:
        with self._lock:
            return all(r.is_alive() or r.progress.status in ("failed", "stopped") for r in self.runners.values())
