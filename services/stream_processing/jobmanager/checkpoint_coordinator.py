"""Checkpoint triggering, completion, retention, restore points and checkpoint storage state.

Tasks write their own pieces (GCS first, the local checkpoint directory when GCS fails) and report
the location in a heartbeat. A checkpoint completes when every task of the job has reported; it is
then recorded in PostgreSQL with each piece's storage and location, and the oldest completed
checkpoints beyond SP_CHECKPOINT_RETAINED are discarded. Restores read each piece from the location
recorded here, which TaskManagers update when they upload local pieces after GCS comes back.
Callers hold JobManagerService.lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from stream_processing.checkpoint_storage import STORAGE_LOCAL, CheckpointStorage
from stream_processing.config import Config
from stream_processing.http_api import CHECK_DEGRADED, CHECK_OK
from stream_processing.jobmanager.job_store import DatabaseUnavailable, JobStore
from stream_processing.jobmanager.resource_manager import Conflict, Job

log = logging.getLogger(__name__)

CHECKPOINT_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class CompletedCheckpoint:
    checkpoint_id: int
    completed_at: datetime
    pieces: dict[int, dict]

    @property
    def has_local_pieces(self) -> bool:
        return any(piece["storage"] == STORAGE_LOCAL for piece in self.pieces.values())


@dataclass
class PendingCheckpoint:
    job_id: str
    checkpoint_id: int
    triggered_at: datetime
    started: float
    pieces: dict[int, dict] = field(default_factory=dict)


class CheckpointCoordinator:
    def __init__(self, config: Config, store: JobStore, storage: CheckpointStorage, registry: CollectorRegistry):
        self.interval = config.checkpoint_interval_seconds
        self.timeout = config.checkpoint_timeout_seconds
        self.retained = config.checkpoint_retained
        self.store = store
        self.storage = storage
        self.completed: dict[str, list[CompletedCheckpoint]] = {}
        self.pending: dict[str, PendingCheckpoint] = {}
        self.last_id: dict[str, int] = {}
        self.last_trigger: dict[str, float] = {}
        self.unreadable: set[tuple[str, int, int]] = set()
        self.gcs_deletions: list[str] = []
        self.completed_total = Counter("sp_checkpoints_completed", "Completed checkpoints", registry=registry)
        self.failed_total = Counter("sp_checkpoints_failed", "Checkpoints that failed or timed out",
                                    registry=registry)
        self.duration = Histogram("sp_checkpoint_duration_seconds", "Trigger to completion",
                                  buckets=CHECKPOINT_DURATION_BUCKETS, registry=registry)
        self.local_fallbacks = Counter(
            "sp_checkpoint_local_fallbacks", "Checkpoint pieces written to local storage because GCS failed",
            registry=registry,
        )

    def load(self) -> None:
        """State as the database has it; pending checkpoints of a previous leader (or process) are failed."""
        checkpoints, pieces = self.store.load_checkpoints()
        completed: dict[str, list[CompletedCheckpoint]] = {}
        last_id: dict[str, int] = {}
        for row in checkpoints:
            last_id[row["job_id"]] = max(last_id.get(row["job_id"], 0), row["checkpoint_id"])
            if row["state"] == "completed":
                completed.setdefault(row["job_id"], []).append(
                    CompletedCheckpoint(row["checkpoint_id"], row["completed_at"], {})
                )
        by_id = {(job_id, c.checkpoint_id): c for job_id, items in completed.items() for c in items}
        for piece in pieces:
            by_id[(piece["job_id"], piece["checkpoint_id"])].pieces[piece["task_index"]] = {
                k: piece[k] for k in ("task_index", "attempt", "taskmanager_id", "storage", "location", "size_bytes")
            }
        self.completed, self.last_id, self.pending = completed, last_id, {}

    # Queries ----------------------------------------------------------------------------------------
    def latest(self, job_id: str) -> CompletedCheckpoint | None:
        items = self.completed.get(job_id)
        return items[-1] if items else None

    def retained_ids(self, job_id: str) -> list[int]:
        ids = [c.checkpoint_id for c in self.completed.get(job_id, [])]
        if job_id in self.pending:
            ids.append(self.pending[job_id].checkpoint_id)
        return ids

    def restore_point(self, job_id: str, task_index: int, below: int | None = None) -> dict | None:
        """The newest completed checkpoint's piece for the task, skipping pieces a restore could not read."""
        for checkpoint in reversed(self.completed.get(job_id, [])):
            if below is not None and checkpoint.checkpoint_id >= below:
                continue
            piece = checkpoint.pieces.get(task_index)
            if piece and (job_id, checkpoint.checkpoint_id, task_index) not in self.unreadable:
                return {"checkpoint_id": checkpoint.checkpoint_id, "storage": piece["storage"],
                        "location": piece["location"]}
        return None

    def mark_unreadable(self, job_id: str, checkpoint_id: int, task_index: int) -> None:
        if (job_id, checkpoint_id, task_index) not in self.unreadable:
            log.error("checkpoint piece could not be read; older checkpoints will be used for this task",
                      extra={"job_id": job_id, "checkpoint_id": checkpoint_id, "task_index": task_index})
            self.unreadable.add((job_id, checkpoint_id, task_index))

    def requested_checkpoint(self, job_id: str, task_index: int) -> int | None:
        pending = self.pending.get(job_id)
        if pending is None or task_index in pending.pieces:
            return None
        return pending.checkpoint_id

    def storage_check(self, jobs: dict[str, Job]) -> dict:
        """GCS state from the last probe, and whether recent checkpoints still live on local disks only."""
        local = [job_id for job_id, job in jobs.items()
                 if job.active and (latest := self.latest(job_id)) is not None and latest.has_local_pieces]
        if not self.storage.gcs_configured:
            return {"status": CHECK_OK, "mode": "local", "detail": "SP_GCS_BUCKET is not set; local storage only"}
        degraded = not self.storage.gcs_available or bool(local)
        check = {"status": CHECK_DEGRADED if degraded else CHECK_OK, "mode": self.storage.mode,
                 "bucket": self.storage.bucket_name, "jobs_with_local_checkpoints": len(local)}
        if self.storage.last_error:
            check["error"] = self.storage.last_error
        return check

    # Triggering -------------------------------------------------------------------------------------
    def trigger(self, job: Job) -> int:
        if job.state != "running":
            raise Conflict(f"job {job.job_id} is {job.state}; checkpoints need every task running")
        if job.job_id in self.pending:
            raise Conflict(f"checkpoint {self.pending[job.job_id].checkpoint_id} of job {job.job_id} is in progress")
        checkpoint_id = self.last_id.get(job.job_id, 0) + 1
        triggered_at = datetime.now(UTC)
        with self.store.transaction() as connection:
            self.store.insert_pending_checkpoint(connection, job.job_id, checkpoint_id, triggered_at)
        self.last_id[job.job_id] = checkpoint_id
        self.last_trigger[job.job_id] = time.monotonic()
        self.pending[job.job_id] = PendingCheckpoint(job.job_id, checkpoint_id, triggered_at, time.monotonic())
        log.debug("checkpoint triggered", extra={"job_id": job.job_id, "checkpoint_id": checkpoint_id})
        return checkpoint_id

    def tick(self, jobs: dict[str, Job], trigger_new: bool = True) -> None:
        now = time.monotonic()
        for job_id, pending in list(self.pending.items()):
            job = jobs.get(job_id)
            if job is None or not job.active:
                self._fail(pending, "job cancelled")
            elif now - pending.started > self.timeout:
                missing = sorted(set(range(job.parallelism)) - set(pending.pieces))
                self._fail(pending, f"timed out after {self.timeout:g} s waiting for tasks {missing}")
            elif len(pending.pieces) == job.parallelism:
                self._complete(job, pending)  # retries a completion whose database write failed
        for job in jobs.values() if trigger_new else ():
            if job.state == "running" and job.job_id not in self.pending and (
                now - self.last_trigger.get(job.job_id, 0.0) >= self.interval
            ):
                self.trigger(job)

    def _fail(self, pending: PendingCheckpoint, reason: str) -> None:
        with self.store.transaction() as connection:
            self.store.fail_checkpoint(connection, pending.job_id, pending.checkpoint_id, reason)
        del self.pending[pending.job_id]
        self.failed_total.inc()
        log.warning(
            "checkpoint failed: %s", reason, extra={"job_id": pending.job_id, "checkpoint_id": pending.checkpoint_id}
        )

    # Reports ----------------------------------------------------------------------------------------
    def accept_reports(self, taskmanager_id: str, reports: list[dict], jobs: dict[str, Job]) -> None:
        """Records pieces of pending checkpoints; completes those that every task has reported."""
        touched = set()
        for report in reports:
            job = jobs.get(report["job_id"])
            pending = self.pending.get(report["job_id"])
            if job is None or pending is None or pending.checkpoint_id != report["checkpoint_id"]:
                continue
            index = report["task_index"]
            if index >= job.parallelism or job.tasks[index].attempt != report["attempt"] or index in pending.pieces:
                continue
            pending.pieces[index] = {
                "task_index": index, "attempt": report["attempt"], "taskmanager_id": taskmanager_id,
                "storage": report["storage"], "location": report["location"], "size_bytes": report["size_bytes"],
            }
            if report["storage"] == STORAGE_LOCAL:
                self.local_fallbacks.inc()
                log.warning("checkpoint piece stored locally because GCS is unavailable",
                            extra={"job_id": job.job_id, "checkpoint_id": pending.checkpoint_id,
                                   "task_index": index, "location": report["location"]})
            touched.add(job.job_id)
        for job_id in touched:
            pending = self.pending[job_id]
            if len(pending.pieces) == jobs[job_id].parallelism:
                try:
                    self._complete(jobs[job_id], pending)
                except DatabaseUnavailable as error:
                    log.warning("checkpoint complete but not yet recorded: %s", error,
                                extra={"job_id": job_id, "checkpoint_id": pending.checkpoint_id})

    def _complete(self, job: Job, pending: PendingCheckpoint) -> None:
        history = self.completed.get(job.job_id, [])
        keep = max(0, self.retained - 1)
        discarded = history[: len(history) - keep] if len(history) > keep else []
        with self.store.transaction() as connection:
            self.store.complete_checkpoint(connection, job.job_id, pending.checkpoint_id,
                                           list(pending.pieces.values()), [c.checkpoint_id for c in discarded])
        checkpoint = CompletedCheckpoint(pending.checkpoint_id, datetime.now(UTC), dict(pending.pieces))
        self.completed[job.job_id] = history[len(discarded):] + [checkpoint]
        del self.pending[job.job_id]
        for old in discarded:
            self.gcs_deletions.extend(p["location"] for p in old.pieces.values() if p["location"].startswith("gs://"))
        elapsed = time.monotonic() - pending.started
        self.completed_total.inc()
        self.duration.observe(elapsed)
        log.info("checkpoint completed", extra={
            "job_id": job.job_id, "checkpoint_id": pending.checkpoint_id, "duration_ms": round(elapsed * 1000, 1),
            "storage": sorted({p["storage"] for p in pending.pieces.values()}),
            "discarded": [c.checkpoint_id for c in discarded]})

    def relocate(self, relocations: list[dict]) -> list[str]:
        """Points completed pieces at their uploaded GCS copies; returns the acknowledged from_locations."""
        acknowledged, moves = [], []
        by_id = {(job_id, c.checkpoint_id): c for job_id, items in self.completed.items() for c in items}
        with self.store.transaction() as connection:
            for relocation in relocations:
                key = (relocation["job_id"], relocation["checkpoint_id"])
                pending = self.pending.get(relocation["job_id"])
                if pending is not None and pending.checkpoint_id == relocation["checkpoint_id"]:
                    pieces = pending.pieces
                else:
                    self.store.relocate_piece(connection, *key, relocation["task_index"],
                                              relocation["from_location"], relocation["location"])
                    pieces = by_id[key].pieces if key in by_id else {}
                moves.append((pieces.get(relocation["task_index"]), relocation))
                acknowledged.append(relocation["from_location"])
        for piece, relocation in moves:
            if piece is not None and piece["location"] == relocation["from_location"]:
                piece["storage"], piece["location"] = "gcs", relocation["location"]
                log.info("checkpoint piece moved to GCS", extra=relocation)
        return acknowledged

    def delete_discarded_pieces(self) -> None:
        """Deletes GCS pieces of discarded checkpoints; local pieces are pruned by their TaskManagers."""
        while self.gcs_deletions and self.storage.gcs_available:
            self.storage.delete_piece(self.gcs_deletions.pop())
