"""HTTP client the TaskManager uses to talk to the JobManager."""

from __future__ import annotations

import requests


class JobManagerError(Exception):
    """The JobManager answered with an unexpected status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"JobManager answered {status}: {message}")
        self.status = status


class JobManagerClient:
    def __init__(self, base_url: str, taskmanager_id: str, timeout: float):
        self.base_url = base_url
        self.taskmanager_id = taskmanager_id
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: dict | None = None, expected=(200,)) -> dict:
        response = self.session.request(method, f"{self.base_url}{path}", json=body, timeout=self.timeout)
        if response.status_code not in expected:
            raise JobManagerError(response.status_code, response.text[:500])
        return response.json() if response.content else {}

    def register(self, slots: int) -> dict:
        return self._call("POST", "/api/v1/taskmanagers", {"id": self.taskmanager_id, "slots": slots}, (200, 201))

    def heartbeat(self, body: dict) -> dict:
        return self._call("POST", f"/api/v1/taskmanagers/{self.taskmanager_id}/heartbeat", body)

    def deregister(self) -> None:
        self._call("DELETE", f"/api/v1/taskmanagers/{self.taskmanager_id}", expected=(200, 204, 404))

    def trigger_checkpoint(self, job_id: str) -> int | None:
        """Id of the new checkpoint, or of the one already in progress; None if the job takes none."""
        try:
            document = self._call("POST", f"/api/v1/jobs/{job_id}/checkpoints", {}, (202, 409))
        except JobManagerError:
            return None
        return document.get("checkpoint_id")

    def checkpoint_state(self, job_id: str, checkpoint_id: int) -> str | None:
        document = self._call("GET", f"/api/v1/jobs/{job_id}/checkpoints")
        for checkpoint in document["checkpoints"]:
            if checkpoint["checkpoint_id"] == checkpoint_id:
                return checkpoint["state"]
        return None
