"""TaskManager registry, slot accounting and task scheduling.

Every change is written to PostgreSQL in one transaction first and applied to memory only after the
commit, so a failed write leaves both unchanged. Callers hold JobManagerService.lock.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from stream_processing.jobmanager.job_store import JobStore

log = logging.getLogger(__name__)

ACTIVE_STATES = ("scheduled", "running", "restarting")
MAX_RESTART_BACKOFF_SECONDS = 30.0


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


@dataclass
class Task:
    task_index: int
    taskmanager_id: str | None = None
    attempt: int = 0
    status: str = "unassigned"
    error: str | None = None
    records_in: int = 0
    records_out: int = 0
    last_checkpoint_id: int = 0
    restore_failed_checkpoint: int | None = None
    restored_from_checkpoint: int | None = None
    delivered_attempt: int | None = None
    consecutive_failures: int = 0
    not_before: float = 0.0

    def as_json(self) -> dict:
        return {
            "task_index": self.task_index, "taskmanager_id": self.taskmanager_id, "attempt": self.attempt,
            "status": self.status, "error": self.error, "records_in": self.records_in,
            "records_out": self.records_out, "last_checkpoint_id": self.last_checkpoint_id,
            "restored_from_checkpoint": self.restored_from_checkpoint,
        }


@dataclass
class Job:
    job_id: str
    name: str
    spec: dict
    parallelism: int
    state: str
    restarts: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tasks: list[Task] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def summary(self) -> dict:
        return {"job_id": self.job_id, "name": self.name, "state": self.state, "parallelism": self.parallelism,
                "restarts": self.restarts, "created_at": self.created_at.isoformat()}


@dataclass
class TaskManagerInfo:
    taskmanager_id: str
    slots: int
    registered_at: datetime
    last_heartbeat: float


class ResourceManager:
    def __init__(self, store: JobStore, heartbeat_timeout: float, registry: CollectorRegistry):
        self.store = store
        self.heartbeat_timeout = heartbeat_timeout
        self.jobs: dict[str, Job] = {}
        self.taskmanagers: dict[str, TaskManagerInfo] = {}
        self.job_restarts = Counter("sp_job_restarts", "Tasks rescheduled after a loss or failure",
                                    registry=registry)
        self.taskmanagers_lost = Counter("sp_taskmanagers_lost", "TaskManagers declared lost after missed heartbeats",
                                         registry=registry)

    # Start-up ---------------------------------------------------------------------------------------
    def load(self) -> None:
        now = time.monotonic()
        jobs = {}
        for row in self.store.load_cancelled_jobs() + self.store.load_active_jobs():
            job = Job(row["job_id"], row["name"], row["spec"], row["parallelism"], row["state"], row["restarts"],
                      row["created_at"])
            # Assigned tasks were delivered before the restart and keep running; no restore to report.
            job.tasks = [Task(t["task_index"], t["taskmanager_id"], t["attempt"],
                              "assigned" if t["taskmanager_id"] else "unassigned",
                              delivered_attempt=t["attempt"] if t["taskmanager_id"] else None)
                         for t in row.get("tasks", [])]
            jobs[job.job_id] = job
        # TaskManagers known before a restart get one heartbeat timeout from now to check in again.
        self.taskmanagers = {
            row["taskmanager_id"]: TaskManagerInfo(row["taskmanager_id"], row["slots"], row["registered_at"], now)
            for row in self.store.load_taskmanagers()
        }
        self.jobs = jobs
        log.info("resumed from the database", extra={
            "active_jobs": sum(job.active for job in jobs.values()), "taskmanagers": len(self.taskmanagers)})

    # Queries ----------------------------------------------------------------------------------------
    def used_slots(self, taskmanager_id: str) -> int:
        return sum(
            1 for job in self.jobs.values() if job.active for task in job.tasks if task.taskmanager_id == taskmanager_id
        )

    def slot_totals(self) -> tuple[int, int]:
        total = sum(tm.slots for tm in self.taskmanagers.values())
        used = sum(self.used_slots(tm_id) for tm_id in self.taskmanagers)
        return total, max(0, total - used)

    def get_job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return job

    def taskmanager_list(self) -> list[dict]:
        now = time.monotonic()
        return [
            {"taskmanager_id": tm.taskmanager_id, "slots": tm.slots, "used_slots": self.used_slots(tm.taskmanager_id),
             "registered_at": tm.registered_at.isoformat(),
             "seconds_since_heartbeat": round(now - tm.last_heartbeat, 3)}
            for tm in sorted(self.taskmanagers.values(), key=lambda tm: tm.taskmanager_id)
        ]

    # Jobs -------------------------------------------------------------------------------------------
    def submit(self, spec: dict) -> Job:
        parallelism = spec.get("parallelism", 1)
        job = Job(str(uuid.uuid4()), spec["name"], spec, parallelism, "scheduled",
                  tasks=[Task(index) for index in range(parallelism)])
        with self.store.transaction() as connection:
            self.store.insert_job(connection, job.job_id, job.name, spec, parallelism, job.state)
        self.jobs[job.job_id] = job
        log.info("job submitted", extra={"job_id": job.job_id, "job_name": job.name, "parallelism": parallelism})
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get_job(job_id)
        if not job.active:
            raise Conflict(f"job {job_id} is already {job.state}")
        with self.store.transaction() as connection:
            self.store.update_job(connection, job_id, "cancelled", job.restarts)
            for task in job.tasks:
                self.store.update_assignment(connection, job_id, task.task_index, None, task.attempt)
        job.state = "cancelled"
        for task in job.tasks:
            task.taskmanager_id, task.status = None, "cancelled"
        log.info("job cancelled", extra={"job_id": job_id})
        return job

    # TaskManagers -----------------------------------------------------------------------------------
    def register(self, taskmanager_id: str, slots: int) -> bool:
        """True when the TaskManager is new to this JobManager."""
        with self.store.transaction() as connection:
            self.store.upsert_taskmanager(connection, taskmanager_id, slots)
        known = self.taskmanagers.get(taskmanager_id)
        if known:
            known.slots, known.last_heartbeat = slots, time.monotonic()
            return False
        self.taskmanagers[taskmanager_id] = TaskManagerInfo(
            taskmanager_id, slots, datetime.now(UTC), time.monotonic()
        )
        log.info("TaskManager registered", extra={"taskmanager_id": taskmanager_id, "slots": slots})
        return True

    def deregister(self, taskmanager_id: str) -> None:
        if taskmanager_id not in self.taskmanagers:
            raise NotFound(f"TaskManager {taskmanager_id} is not registered")
        self._remove_taskmanagers([taskmanager_id], "deregistered")

    def record_heartbeat(self, taskmanager_id: str, body: dict) -> None:
        taskmanager = self.taskmanagers.get(taskmanager_id)
        if taskmanager is None:
            raise NotFound(f"TaskManager {taskmanager_id} is not registered; register first")
        taskmanager.last_heartbeat = time.monotonic()
        taskmanager.slots = body["slots"]
        for status in body["tasks"]:
            job = self.jobs.get(status["job_id"])
            if job is None or not job.active or status["task_index"] >= job.parallelism:
                continue
            task = job.tasks[status["task_index"]]
            if task.taskmanager_id != taskmanager_id or task.attempt != status["attempt"]:
                continue  # a stale attempt, stopped by this heartbeat's answer
            task.status = status["status"]
            task.error = status.get("error")
            task.records_in = status.get("records_in", task.records_in)
            task.records_out = status.get("records_out", task.records_out)
            task.last_checkpoint_id = status.get("last_checkpoint_id", task.last_checkpoint_id)
            task.restore_failed_checkpoint = status.get("restore_failed_checkpoint")
            if task.status == "running":
                task.consecutive_failures = 0

    def assignments_for(self, taskmanager_id: str) -> list[tuple[Job, Task]]:
        return [
            (job, task) for job in self.jobs.values() if job.active
            for task in job.tasks if task.taskmanager_id == taskmanager_id
        ]

    # Scheduling -------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Declares silent TaskManagers lost, releases failed tasks and places unassigned tasks on free slots."""
        now = time.monotonic()
        lost = [tm_id for tm_id, tm in self.taskmanagers.items() if now - tm.last_heartbeat > self.heartbeat_timeout]
        if lost:
            for tm_id in lost:
                log.warning("TaskManager lost: no heartbeat for %.1f s", now - self.taskmanagers[tm_id].last_heartbeat,
                            extra={"taskmanager_id": tm_id})
            self.taskmanagers_lost.inc(len(lost))
            self._remove_taskmanagers(lost, "lost")
        failed = [(job, task) for job in self.jobs.values() if job.active for task in job.tasks
                  if task.status == "failed" and task.taskmanager_id is not None]
        if failed:
            self._release(failed, "failed")
        self._schedule(now)

    def _remove_taskmanagers(self, taskmanager_ids: list[str], reason: str) -> None:
        affected = [(job, task) for job in self.jobs.values() if job.active for task in job.tasks
                    if task.taskmanager_id in taskmanager_ids]
        self._release(affected, reason, removed_taskmanagers=taskmanager_ids)

    def _release(self, tasks: list[tuple[Job, Task]], reason: str, removed_taskmanagers=()) -> None:
        now = time.monotonic()
        jobs = {job.job_id: job for job, _task in tasks}
        with self.store.transaction() as connection:
            for tm_id in removed_taskmanagers:
                self.store.delete_taskmanager(connection, tm_id)
            for job, task in tasks:
                self.store.update_assignment(connection, job.job_id, task.task_index, None, task.attempt + 1)
            for job in jobs.values():
                self.store.update_job(connection, job.job_id, "restarting", job.restarts + 1)
        for tm_id in removed_taskmanagers:
            self.taskmanagers.pop(tm_id, None)
        for job, task in tasks:
            log.warning("rescheduling task", extra={"job_id": job.job_id, "task_index": task.task_index,
                                                    "taskmanager_id": task.taskmanager_id, "reason": reason,
                                                    "error": task.error})
            if reason == "failed":
                task.consecutive_failures += 1
                task.not_before = now + min(MAX_RESTART_BACKOFF_SECONDS, 0.5 * 2 ** task.consecutive_failures)
            task.taskmanager_id, task.attempt, task.status = None, task.attempt + 1, "unassigned"
        for job in jobs.values():
            job.state, job.restarts = "restarting", job.restarts + 1
        self.job_restarts.inc(len(jobs))

    def _schedule(self, now: float) -> None:
        free = {tm_id: tm.slots - self.used_slots(tm_id) for tm_id, tm in self.taskmanagers.items()}
        placements: list[tuple[Job, Task, str]] = []
        for job in sorted((j for j in self.jobs.values() if j.active), key=lambda j: j.created_at):
            for task in job.tasks:
                if task.taskmanager_id is not None or now < task.not_before:
                    continue
                # The TaskManager with the most free slots spreads a job's tasks across machines.
                tm_id = max(free, key=lambda t: (free[t], t), default=None)
                if tm_id is None or free[tm_id] <= 0:
                    break
                free[tm_id] -= 1
                placements.append((job, task, tm_id))
        changed_jobs = {}
        for job in self.jobs.values():
            if job.active:
                pending = [t for t in job.tasks if t.taskmanager_id is None and not any(
                    p[1] is t for p in placements)]
                new_state = "running" if not pending else job.state
                if new_state != job.state:
                    changed_jobs[job.job_id] = new_state
        if not placements and not changed_jobs:
            return
        with self.store.transaction() as connection:
            for job, task, tm_id in placements:
                self.store.update_assignment(connection, job.job_id, task.task_index, tm_id, task.attempt)
            for job_id, state in changed_jobs.items():
                self.store.update_job(connection, job_id, state, self.jobs[job_id].restarts)
        for job, task, tm_id in placements:
            task.taskmanager_id, task.status = tm_id, "assigned"
            log.info("task assigned", extra={"job_id": job.job_id, "task_index": task.task_index,
                                             "taskmanager_id": tm_id, "attempt": task.attempt})
        for job_id, state in changed_jobs.items():
            self.jobs[job_id].state = state
