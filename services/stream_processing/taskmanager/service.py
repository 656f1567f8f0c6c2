"""TaskManager process state: registration, heartbeats, checkpoint storage upkeep and graceful shutdown."""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge

from stream_processing.checkpoint_storage import CheckpointStorage
from stream_processing.config import Config
from stream_processing.http_api import CHECK_DEGRADED, CHECK_FAILING, CHECK_OK
from stream_processing.taskmanager.jobmanager_client import JobManagerClient, JobManagerError
from stream_processing.taskmanager.task_executor import TaskExecutor

log = logging.getLogger(__name__)

_LOCAL_PIECE = re.compile(r"(?P<job>[^/]+)/chk-(?P<checkpoint>\d+)/task-(?P<task>\d+)-attempt-(?P<attempt>\d+)\.json")


class TaskManagerService:
    def __init__(self, config: Config, registry: CollectorRegistry | None = None):
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.storage = CheckpointStorage(config)
        self.executor = TaskExecutor(config.kafka_bootstrap, self.storage, self.registry)
        self.client = JobManagerClient(
            config.jobmanager_url, config.taskmanager_id, timeout=max(1.0, config.heartbeat_timeout_seconds / 2)
        )
        self.shutting_down = False
        self._stopped = threading.Event()
        self._heartbeat_stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._registered = False
        self.last_heartbeat_ok: float | None = None
        self.last_heartbeat_error: str | None = None
        self._uploading: set[str] = set()
        self.heartbeat_failures = Counter(
            "sp_heartbeat_failures", "Heartbeats the JobManager did not accept", registry=self.registry
        )
        Gauge("sp_checkpoint_storage_degraded", "1 while checkpoints go to the local directory instead of GCS",
              registry=self.registry).set_function(
            lambda: int(self.storage.gcs_configured and not self.storage.gcs_available))

    def start(self) -> None:
        os.makedirs(self.config.checkpoint_dir, exist_ok=True)
        self.storage.probe()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._storage_loop, "checkpoint-storage")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    # Health ---------------------------------------------------------------------------------------
    def is_live(self) -> bool:
        return all(thread.is_alive() for thread in self._threads) or self._stopped.is_set()

    def is_ready(self) -> bool:
        return self._registered

    def checks(self) -> dict[str, dict]:
        now = time.monotonic()
        connected = self.last_heartbeat_ok is not None and (
            now - self.last_heartbeat_ok < self.config.heartbeat_timeout_seconds
        )
        jobmanager = {"status": CHECK_OK if connected else CHECK_FAILING, "url": self.config.jobmanager_url}
        if not connected:
            jobmanager["error"] = self.last_heartbeat_error or "no heartbeat accepted yet"
        degraded = self.storage.gcs_configured and not self.storage.gcs_available
        storage = {
            "status": CHECK_DEGRADED if degraded else CHECK_OK,
            "mode": self.storage.mode,
            "bucket": self.storage.bucket_name or None,
            "local_dir": self.storage.local_dir,
        }
        if self.storage.last_error:
            storage["error"] = self.storage.last_error
        tasks = self.executor.heartbeat_body(self.config.taskmanager_slots)["tasks"]
        failed = [t for t in tasks if t["status"] == "failed"]
        task_check = {"status": CHECK_DEGRADED if failed else CHECK_OK, "running": len(tasks) - len(failed),
                      "failed": len(failed)}
        return {"jobmanager_connection": jobmanager, "checkpoint_storage": storage, "tasks": task_check}

    # Heartbeats -----------------------------------------------------------------------------------
    def _heartbeat_once(self) -> None:
        if not self._registered:
            self.client.register(self.config.taskmanager_slots)
            self._registered = True
            log.info("registered with the JobManager", extra={"jobmanager_url": self.config.jobmanager_url})
        body = self.executor.heartbeat_body(self.config.taskmanager_slots)
        try:
            response = self.client.heartbeat(body)
        except JobManagerError as error:
            if error.status == 404:
                self._registered = False  # a restarted JobManager without our registration
            raise
        # A local piece is deleted only once the metadata points at its GCS copy.
        for relocation in self.executor.acknowledge(body, response.get("acknowledged_relocations", [])):
            self.storage.delete_piece(relocation["from_location"])
            self._uploading.discard(relocation["from_location"])
        self.executor.apply(response)
        self.last_heartbeat_ok = time.monotonic()
        self.last_heartbeat_error = None

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stopped.is_set():
            try:
                self._heartbeat_once()
            except (requests.RequestException, JobManagerError, ValueError) as error:
                self.heartbeat_failures.inc()
                message = f"{type(error).__name__}: {error}"
                if message != self.last_heartbeat_error:
                    log.warning("heartbeat to the JobManager failed: %s", message)
                self.last_heartbeat_error = message
            self.executor.report_ready.wait(self.config.heartbeat_interval_seconds)
            self.executor.report_ready.clear()

    # Checkpoint storage upkeep --------------------------------------------------------------------
    def _local_pieces(self):
        root = self.config.checkpoint_dir
        for directory, _subdirectories, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                match = _LOCAL_PIECE.fullmatch(os.path.relpath(path, root))
                if match:
                    yield path, match

    def maintain_local_pieces(self) -> None:
        """Uploads retained local pieces once GCS answers; deletes local pieces no checkpoint needs."""
        retained = self.executor.retained_checkpoints
        if retained is None:
            return
        for path, match in list(self._local_pieces()):
            location = f"file://{path}"
            job_id, checkpoint_id = match["job"], int(match["checkpoint"])
            kept = retained.get(job_id, [])
            if not kept or (checkpoint_id not in kept and checkpoint_id < max(kept)):
                self.storage.delete_piece(location)
                continue
            if self.storage.gcs_available and location not in self._uploading:
                new_location = self.storage.upload_local_piece(location)
                if new_location:
                    self._uploading.add(location)
                    self.executor.queue_relocation({
                        "job_id": job_id, "checkpoint_id": checkpoint_id, "task_index": int(match["task"]),
                        "attempt": int(match["attempt"]), "from_location": location, "location": new_location,
                    })

    def _storage_loop(self) -> None:
        while not self._stopped.wait(self.config.storage_probe_interval_seconds):
            if self.storage.gcs_configured:
                self.storage.probe()
            try:
                self.maintain_local_pieces()
            except OSError as error:
                log.warning("checkpoint directory upkeep failed: %s", error)

    # Shutdown -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Final checkpoint of this TaskManager's jobs, stop the tasks, deregister."""
        self.shutting_down = True
        deadline = time.monotonic() + self.config.shutdown_grace_seconds
        wanted = {}
        for job_id in self.executor.job_ids():
            try:
                checkpoint_id = self.client.trigger_checkpoint(job_id)
            except requests.RequestException as error:
                log.warning("could not request a final checkpoint for job %s: %s", job_id, error)
                continue
            if checkpoint_id:
                wanted[job_id] = checkpoint_id
        log.info("shutting down; waiting for final checkpoints", extra={"checkpoints": wanted})
        while time.monotonic() < deadline and (
            any(self.executor.checkpointed_through(j) < c for j, c in wanted.items())
            or self.executor.has_unsent_reports()
        ):
            self.executor.report_ready.set()
            time.sleep(0.05)
        for job_id, checkpoint_id in wanted.items():
            while time.monotonic() < deadline:
                try:
                    if self.client.checkpoint_state(job_id, checkpoint_id) != "pending":
                        break
                except (requests.RequestException, JobManagerError):
                    break
                time.sleep(0.1)
        self._heartbeat_stopped.set()
        self.executor.stop_all(max(1.0, deadline - time.monotonic()))
        try:
            self.client.deregister()
        except (requests.RequestException, JobManagerError) as error:
            log.warning("could not deregister from the JobManager: %s", error)
        self._stopped.set()
        log.info("TaskManager stopped")
