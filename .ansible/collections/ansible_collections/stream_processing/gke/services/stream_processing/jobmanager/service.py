"""JobManager process state: resource manager, checkpoint coordinator, background loops, health and shutdown."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from stream_processing.checkpoint_storage import CheckpointStorage
from stream_processing.config import Config
from stream_processing.http_api import CHECK_FAILING, CHECK_OK
from stream_processing.jobmanager.checkpoint_coordinator import CheckpointCoordinator
from stream_processing.jobmanager.job_store import DatabaseUnavailable, JobStore
from stream_processing.jobmanager.leader_election import LeaderElection
from stream_processing.jobmanager.leader_proxy import LeaderProxy
from stream_processing.jobmanager.resource_manager import ACTIVE_STATES, Job, ResourceManager, Task

log = logging.getLogger(__name__)

DATABASE_PROBE_SECONDS = 2.0
JOB_STATES = (*ACTIVE_STATES, "cancelled")


class _StateCollector:
    """Gauges computed from in-memory state at scrape time, so they are never stale."""

    def __init__(self, service: JobManagerService):
        self.service = service

    def collect(self):
        service = self.service
        yield GaugeMetricFamily("sp_jobmanager_leader", "1 while this JobManager is the leader",
                                value=1 if service.leading else 0)
        storage = service.coordinator.storage_check(service.resources.jobs)
        yield GaugeMetricFamily("sp_checkpoint_storage_degraded", "1 while checkpoints are on local storage",
                                value=0 if storage["status"] == CHECK_OK else 1)
        yield GaugeMetricFamily("sp_database_up", "1 when the last database probe succeeded",
                                value=1 if service.database_ok else 0)
        if not service.leading:
            return  # a standby's copy of the job and slot state is stale; only the leader reports it
        resources = service.resources
        jobs = GaugeMetricFamily("sp_jobs", "Jobs by state", labels=["state"])
        states = [job.state for job in list(resources.jobs.values())]
        for state in JOB_STATES:
            jobs.add_metric([state], states.count(state))
        yield jobs
        total, free = resources.slot_totals()
        yield GaugeMetricFamily("sp_taskmanagers_registered", "Registered TaskManagers",
                                value=len(resources.taskmanagers))
        yield GaugeMetricFamily("sp_task_slots", "Task slots of registered TaskManagers", value=total)
        yield GaugeMetricFamily("sp_task_slots_free", "Task slots without a task", value=free)


class JobManagerService:
    def __init__(self, config: Config, registry: CollectorRegistry | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry()
        # One lock for scheduling and checkpoint state; /health and /metrics read without it.
        self.lock = threading.RLock()
        self.store = JobStore(config.database_url, config.database_password)
        self.storage = CheckpointStorage(config)
        self.resources = ResourceManager(self.store, config.heartbeat_timeout_seconds, self.registry)
        self.coordinator = CheckpointCoordinator(config, self.store, self.storage, self.registry)
        self.election = LeaderElection(self.store, config.jobmanager_id, config.advertised_url,
                                       config.leader_poll_seconds, self._take_leadership, self._give_up_leadership)
        self.proxy = LeaderProxy(config.jobmanager_id, pool_size=config.http_threads)
        self.registry.register(_StateCollector(self))
        self.started = False
        self.shutting_down = False
        self.database_ok = False
        self.database_error: str | None = "not checked yet"
        self.last_tick_error: str | None = None
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduler: threading.Thread | None = None
        self._scheduler_stopped = threading.Event()
        self.tick_seconds = max(0.05, min(1.0, config.heartbeat_interval_seconds / 2))

    def start(self) -> None:
        """Migrates, then campaigns; the leader resumes from the database, a standby just reports ready."""
        self.store.open()
        version = self.store.migrate()
        log.info("database schema at version %d", version)
        self.database_ok, self.database_error = True, None
        self.storage.probe()
        probes = threading.Thread(target=self._probe_loop, name="probes", daemon=True)
        probes.start()
        self._threads = [probes, self.election.thread]
        self.election.start()
        self.started = True

    # Leadership -------------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return self.election.leading

    def _take_leadership(self) -> None:
        """What a restarted JobManager does: state from the database, then the scheduler and coordinator."""
        with self.lock:
            self.resources.load()
            self.coordinator.load()
        self._scheduler_stopped = threading.Event()
        self._scheduler = threading.Thread(target=self._scheduling_loop, args=(self._scheduler_stopped,),
                                           name="scheduler", daemon=True)
        self._scheduler.start()

    def _give_up_leadership(self, reason: str) -> None:
        """Stops scheduling and checkpointing at once; state is reloaded if this JobManager leads again."""
        self._scheduler_stopped.set()
        if self._scheduler is not None and self._scheduler is not threading.current_thread():
            self._scheduler.join(timeout=10)
        log.warning("stopped leading: %s", reason)

    # Background loops -------------------------------------------------------------------------------
    def _scheduling_loop(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.tick_seconds):
            try:
                with self.lock:
                    self.resources.tick()
                    self.coordinator.tick(self.resources.jobs, trigger_new=not self.shutting_down)
                self.last_tick_error = None
            except DatabaseUnavailable as error:
                if self.last_tick_error != str(error):
                    log.error("scheduling paused: %s", error)
                self.last_tick_error = str(error)
            except Exception:  # noqa: BLE001 - the loop must survive to keep the JobManager useful
                log.exception("scheduling tick failed")

    def _probe_loop(self) -> None:
        next_storage_probe = 0.0
        while not self._stopped.is_set():
            try:
                self.store.ping()
                if not self.database_ok:
                    log.info("database reachable")
                self.database_ok, self.database_error = True, None
            except DatabaseUnavailable as error:
                if self.database_ok:
                    log.error("database unreachable: %s", error)
                self.database_ok, self.database_error = False, str(error)
            if time.monotonic() >= next_storage_probe:
                self.storage.probe()
                self.coordinator.delete_discarded_pieces()
                next_storage_probe = time.monotonic() + self.config.storage_probe_interval_seconds
            self._stopped.wait(min(DATABASE_PROBE_SECONDS, self.config.storage_probe_interval_seconds))

    # Health -----------------------------------------------------------------------------------------
    def is_live(self) -> bool:
        threads = [*self._threads, *([self._scheduler] if self.leading else [])]
        return not self.started or all(thread.is_alive() for thread in threads)

    def is_ready(self) -> bool:
        return self.started

    def leadership(self) -> dict:
        leader = self.election.leader
        return {"role": "leader" if self.leading else "follower", "jobmanager_id": self.config.jobmanager_id,
                "leader_id": leader.leader_id if leader else None}

    def checks(self) -> dict[str, dict]:
        leader = self.election.leader
        if self.leading:
            scheduler_alive = self._scheduler is not None and self._scheduler.is_alive()
            resource_manager = {"status": CHECK_OK if scheduler_alive else CHECK_FAILING, "state": "leading",
                                "taskmanagers": len(self.resources.taskmanagers)}
            if not scheduler_alive:
                resource_manager["error"] = "scheduler thread stopped"
        elif self.started:
            # A standby is healthy: it forwards the API to the leader and takes over when the lock frees.
            resource_manager = {"status": CHECK_OK, "state": "standby",
                                "leader": leader.as_json() if leader else None}
            if self.election.last_error:
                resource_manager["error"] = self.election.last_error
        else:
            resource_manager = {"status": CHECK_FAILING, "state": "starting", "error": "not started"}
        database = {"status": CHECK_OK if self.database_ok else CHECK_FAILING}
        if self.database_error:
            database["error"] = self.database_error
        return {
            "resource_manager": resource_manager,
            "database": database,
            "checkpoint_storage": self.coordinator.storage_check(self.resources.jobs),
        }

    # Heartbeats -------------------------------------------------------------------------------------
    def heartbeat(self, taskmanager_id: str, body: dict) -> dict:
        with self.lock:
            self.resources.record_heartbeat(taskmanager_id, body)
            jobs = self.resources.jobs
            for job in jobs.values():
                for task in job.tasks:
                    if task.taskmanager_id == taskmanager_id and task.restore_failed_checkpoint:
                        self.coordinator.mark_unreadable(job.job_id, task.restore_failed_checkpoint, task.task_index)
            self.coordinator.accept_reports(taskmanager_id, body.get("checkpoint_reports", []), jobs)
            acknowledged = []
            if body.get("relocated_pieces"):
                try:
                    acknowledged = self.coordinator.relocate(body["relocated_pieces"])
                except DatabaseUnavailable as error:
                    log.warning("piece relocations not recorded yet: %s", error)
            assignments = [self._assignment(job, task) for job, task in self.resources.assignments_for(taskmanager_id)]
            retained = {job_id: self.coordinator.retained_ids(job_id) for job_id, job in jobs.items() if job.active}
        return {"assignments": assignments, "retained_checkpoints": retained,
                "acknowledged_relocations": acknowledged}

    def _assignment(self, job: Job, task: Task) -> dict:
        restore = self.coordinator.restore_point(job.job_id, task.task_index)
        if task.delivered_attempt != task.attempt:
            task.delivered_attempt = task.attempt
            task.restored_from_checkpoint = restore["checkpoint_id"] if restore else None
            if restore:
                log.info("task restores from checkpoint", extra={
                    "job_id": job.job_id, "task_index": task.task_index, "attempt": task.attempt,
                    "checkpoint_id": restore["checkpoint_id"], "location": restore["location"]})
        return {
            "job_id": job.job_id, "task_index": task.task_index, "parallelism": job.parallelism,
            "attempt": task.attempt, "spec": job.spec, "restore": restore,
            "checkpoint_id": self.coordinator.requested_checkpoint(job.job_id, task.task_index),
        }

    # Jobs -------------------------------------------------------------------------------------------
    def job_document(self, job: Job) -> dict:
        latest = self.coordinator.latest(job.job_id)
        pending = self.coordinator.pending.get(job.job_id)
        return {**job.summary(), "spec": job.spec, "tasks": [task.as_json() for task in job.tasks],
                "last_completed_checkpoint_id": latest.checkpoint_id if latest else None,
                "pending_checkpoint_id": pending.checkpoint_id if pending else None}

    # Shutdown ---------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Readiness goes 503 at once; a leader lets a running checkpoint finish, then releases leadership."""
        self.shutting_down = True
        deadline = time.monotonic() + self.config.shutdown_grace_seconds
        while self.leading and time.monotonic() < deadline and any(
            self.resources.jobs[job_id].state == "running" for job_id in list(self.coordinator.pending)
        ):
            time.sleep(0.05)
        self.election.stop()
        self._stopped.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=max(0.5, deadline - time.monotonic()))
        self.store.close()
        log.info("JobManager stopped")
