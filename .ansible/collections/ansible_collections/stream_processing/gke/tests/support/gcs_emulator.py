"""fake-gcs-server on 127.0.0.1 for tests, with stop/start that keeps its port and its data."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import requests

from .processes import LocalServer, ManagedProcess, free_loopback_port, provisioned_path

TEST_PROJECT = "test-project"


@functools.cache
def fake_gcs_server_binary() -> Path:
    """Build (or reuse from the cache) the pinned fake-gcs-server and return its path."""
    return provisioned_path("tools/go-build.sh", "fake-gcs-server")


class GcsEmulator(LocalServer):
    """A fake-gcs-server process serving the GCS JSON API over plain HTTP on 127.0.0.1.

    backend="memory" (the default) supports every bucket property, but starts empty after each
    `start()`. backend="filesystem" keeps buckets and objects across `stop()`/`start()`, which is
    what a GCS outage looks like, but cannot create buckets with object versioning.
    """

    def __init__(self, *, backend: str = "memory", location: str = "US-CENTRAL1", workdir: Path | None = None):
        if backend not in ("filesystem", "memory"):
            raise ValueError(f"backend must be 'filesystem' or 'memory', not {backend!r}")
        self.backend = backend
        self.location = location
        binary = fake_gcs_server_binary()
        self._session = requests.Session()
        super().__init__("spg-fake-gcs-", workdir)
        with self._removing_workdir_on_error():
            self.port = free_loopback_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self.process = ManagedProcess(
                "fake-gcs-server",
                [
                    binary,
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

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that should use this emulator through google-cloud-storage."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    @property
    def address(self) -> str:
        return self.endpoint

    def _healthy(self) -> bool:
        return self._session.get(f"{self.endpoint}/_internal/healthcheck", timeout=1).status_code == 200

    def close(self) -> None:
        super().close()
        self._session.close()

    # --- convenience for tests -------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self._session.request(method, f"{self.endpoint}{path}", timeout=10, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"fake-gcs-server: {method} {path} -> {response.status_code}: {response.text[:500]}")
        return response

    def create_bucket(self, name: str | None = None, *, versioning: bool = False) -> str:
        """Create a bucket (a unique name by default) and return its name.

        fake-gcs-server stores only versioning per bucket: every bucket reports the server-wide
        `location` and storage class STANDARD, and labels, lifecycle and retention are not kept.
        """
        name = name or unique_bucket_name()
        body = {"name": name, "versioning": {"enabled": versioning}}
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
