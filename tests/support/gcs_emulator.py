"""fake-gcs-server on 127.0.0.1 for tests, with stop/start that keeps its port and its data."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import requests

from tests.support.processes import ManagedProcess, ProcessError, free_loopback_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_BUILD = REPO_ROOT / "tools" / "go-build.sh"
TEST_PROJECT = "test-project"


@functools.cache
def fake_gcs_server_binary() -> Path:
    """Build (or reuse from the cache) the pinned fake-gcs-server and return its path."""
    result = subprocess.run([GO_BUILD, "fake-gcs-server"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ProcessError(
            f"{GO_BUILD} fake-gcs-server failed with exit code {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


class GcsEmulator:
    """A fake-gcs-server process serving the GCS JSON API over plain HTTP on 127.0.0.1.

    The filesystem backend (the default) keeps buckets and objects across `stop()`/`start()`,
    which is what a GCS outage looks like; `backend="memory"` starts empty after every start.
    """

    def __init__(self, *, backend: str = "filesystem", location: str = "US-CENTRAL1", workdir: Path | None = None):
        if backend not in ("filesystem", "memory"):
            raise ValueError(f"backend must be 'filesystem' or 'memory', not {backend!r}")
        self.backend = backend
        self.location = location
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="spg-fake-gcs-"))
        self.port = free_loopback_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._session = requests.Session()
        self.process = ManagedProcess(
            "fake-gcs-server",
            [
                fake_gcs_server_binary(),
                "-scheme", "http",
                "-host", "127.0.0.1",
                "-port", str(self.port),
                # Upload sessions hand back Location URLs built from these; both must name this server.
                "-external-url", self.endpoint,
                "-public-host", f"127.0.0.1:{self.port}",
                "-backend", backend,
                "-filesystem-root", str(self.workdir / "storage"),
                "-location", location,
                "-log-level", "warn",
            ],
            log_path=self.workdir / "fake-gcs-server.log",
            ready=self._healthy,
            ready_timeout=30,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<GcsEmulator {self.endpoint} running={self.running}>"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that should use this emulator through google-cloud-storage."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    @property
    def running(self) -> bool:
        return self.process.running

    def _healthy(self) -> bool:
        return self._session.get(f"{self.endpoint}/_internal/healthcheck", timeout=1).status_code == 200

    def start(self) -> GcsEmulator:
        """Start (or restart after `stop()`) on the same port; returns when it answers requests."""
        self.process.start()
        return self

    def stop(self) -> None:
        """Stop the server; clients get connection errors until `start()`."""
        self.process.stop()

    def close(self) -> None:
        """Stop the server and delete its data and log."""
        self.stop()
        self._session.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- convenience for tests -------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self._session.request(method, f"{self.endpoint}{path}", timeout=10, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"fake-gcs-server: {method} {path} -> {response.status_code}: {response.text[:500]}")
        return response

    def create_bucket(self, name: str | None = None, *, versioning: bool = False, location: str | None = None) -> str:
        """Create a bucket (a unique name by default) and return its name."""
        name = name or unique_bucket_name()
        body = {"name": name, "versioning": {"enabled": versioning}, "location": location or self.location}
        self._request("POST", "/storage/v1/b", params={"project": TEST_PROJECT}, json=body)
        return name

    def bucket_exists(self, name: str) -> bool:
        response = self._session.get(f"{self.endpoint}/storage/v1/b/{name}", timeout=10)
        return response.status_code == 200

    def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        """Names of every object in the bucket under prefix."""
        names, page_token = [], None
        while True:
            params = {"prefix": prefix, **({"pageToken": page_token} if page_token else {})}
            page = self._request("GET", f"/storage/v1/b/{bucket}/o", params=params).json()
            names += [item["name"] for item in page.get("items", [])]
            page_token = page.get("nextPageToken")
            if not page_token:
                return names

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket and every object in it."""
        for object_name in self.list_objects(name):
            self._request("DELETE", f"/storage/v1/b/{name}/o/{requests.utils.quote(object_name, safe='')}")
        self._request("DELETE", f"/storage/v1/b/{name}")

    def reset(self) -> None:
        """Delete every bucket and object."""
        self._request("POST", "/_internal/delete_all")

    def client(self, project: str = TEST_PROJECT):
        """A google.cloud.storage.Client talking to this emulator with anonymous credentials."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )


def unique_bucket_name(prefix: str = "test") -> str:
    """A valid bucket name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
