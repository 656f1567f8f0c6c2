"""Checkpoint pieces in GCS, with the local checkpoint directory as fallback.

A piece's location is either gs://<bucket>/<prefix>/<job>/chk-<n>/<file> or
file://<checkpoint dir>/<job>/chk-<n>/<file>; the same relative name is used in both places so a
local piece can later be uploaded unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass

from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry

from stream_processing.config import Config

log = logging.getLogger(__name__)

STORAGE_GCS = "gcs"
STORAGE_LOCAL = "local"


class CheckpointStorageError(Exception):
    """A piece could not be written or read anywhere."""


@dataclass(frozen=True)
class StoredPiece:
    storage: str
    location: str
    size_bytes: int


def piece_name(job_id: str, checkpoint_id: int, task_index: int, attempt: int) -> str:
    return f"{job_id}/chk-{checkpoint_id}/task-{task_index}-attempt-{attempt}.json"


def _gcs_client():
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="emulator", credentials=AnonymousCredentials())
    return storage.Client()


class CheckpointStorage:
    """Writes go to GCS while it answers; after a failure they go to the local directory until a probe succeeds."""

    def __init__(self, config: Config):
        self.bucket_name = config.gcs_bucket
        self.prefix = config.gcs_prefix
        self.local_dir = config.checkpoint_dir
        self.timeout = config.gcs_timeout_seconds
        self._retry = Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=config.gcs_timeout_seconds)
        self._lock = threading.Lock()
        self._bucket = None
        self.gcs_available = False
        self.last_error: str | None = None if self.bucket_name else "SP_GCS_BUCKET is not set"
        self.last_probe_at: float | None = None

    @property
    def gcs_configured(self) -> bool:
        return bool(self.bucket_name)

    @property
    def mode(self) -> str:
        return STORAGE_GCS if self.gcs_available else STORAGE_LOCAL

    def _gcs_bucket(self):
        with self._lock:
            if self._bucket is None:
                self._bucket = _gcs_client().bucket(self.bucket_name)
            return self._bucket

    def _object_name(self, relative_name: str) -> str:
        return f"{self.prefix}/{relative_name}" if self.prefix else relative_name

    def _mark_unavailable(self, action: str, error: Exception) -> None:
        message = f"GCS {action} failed for bucket {self.bucket_name!r}: {type(error).__name__}: {error}"
        if self.gcs_available or self.last_error != message:
            log.error("%s; using the local checkpoint directory %s until GCS answers again", message, self.local_dir)
        self.gcs_available = False
        self.last_error = message

    def probe(self) -> bool:
        """Checks that the bucket exists and answers; logs a clear warning when it does not."""
        if not self.gcs_configured:
            return False
        self.last_probe_at = time.time()
        try:
            exists = self._gcs_bucket().exists(timeout=self.timeout, retry=None)
        except Exception as error:  # noqa: BLE001 - any client failure means "unavailable"
            self._mark_unavailable("bucket check", error)
            return False
        if not exists:
            message = f"GCS bucket {self.bucket_name!r} does not exist or is not visible to this service account"
            if self.last_error != message:
                log.warning("%s; checkpoints go to the local directory %s", message, self.local_dir)
            self.gcs_available = False
            self.last_error = message
            return False
        if not self.gcs_available:
            log.info("GCS bucket %r is available; checkpoints go to GCS", self.bucket_name)
        self.gcs_available = True
        self.last_error = None
        return True

    def _upload(self, relative_name: str, data: bytes) -> str:
        blob = self._gcs_bucket().blob(self._object_name(relative_name))
        # Pieces are write-once; the precondition makes a retried upload safe (412: an earlier try stored it).
        with contextlib.suppress(google_errors.PreconditionFailed):
            blob.upload_from_string(
                data, content_type="application/json", if_generation_match=0, timeout=self.timeout, retry=self._retry
            )
        return f"gs://{self.bucket_name}/{blob.name}"

    def write_piece(self, relative_name: str, data: bytes) -> StoredPiece:
        if self.gcs_available:
            try:
                return StoredPiece(STORAGE_GCS, self._upload(relative_name, data), len(data))
            except Exception as error:  # noqa: BLE001 - any client failure means "fall back"
                self._mark_unavailable("upload", error)
        return StoredPiece(STORAGE_LOCAL, self._write_local(relative_name, data), len(data))

    def _write_local(self, relative_name: str, data: bytes) -> str:
        path = os.path.join(self.local_dir, relative_name)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.partial"
            with open(partial, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as error:
            raise CheckpointStorageError(
                f"cannot write checkpoint piece to {path} (GCS unavailable too: {self.last_error}): {error}"
            ) from error
        return f"file://{path}"

    def read_piece(self, location: str) -> bytes:
        try:
            if location.startswith("file://"):
                with open(location.removeprefix("file://"), "rb") as handle:
                    return handle.read()
            if location.startswith("gs://"):
                bucket_name, _separator, object_name = location.removeprefix("gs://").partition("/")
                if bucket_name != self.bucket_name:
                    raise CheckpointStorageError(f"piece {location} is in another bucket than {self.bucket_name!r}")
                return self._gcs_bucket().blob(object_name).download_as_bytes(timeout=self.timeout, retry=self._retry)
        except CheckpointStorageError:
            raise
        except Exception as error:  # noqa: BLE001
            raise CheckpointStorageError(f"cannot read checkpoint piece {location}: {error}") from error
        raise CheckpointStorageError(f"unknown checkpoint piece location {location!r}")

    def delete_piece(self, location: str) -> None:
        """Best effort; a piece that is already gone is fine."""
        try:
            if location.startswith("file://"):
                os.remove(location.removeprefix("file://"))
            elif location.startswith("gs://") and self.gcs_available:
                object_name = location.removeprefix("gs://").partition("/")[2]
                self._gcs_bucket().blob(object_name).delete(timeout=self.timeout, retry=None)
        except (FileNotFoundError, google_errors.NotFound):
            pass
        except Exception as error:  # noqa: BLE001
            log.warning("could not delete checkpoint piece %s: %s", location, error)

    def upload_local_piece(self, location: str) -> str | None:
        """Copies a local piece to GCS; returns its new location, or None when GCS refused it."""
        path = location.removeprefix("file://")
        relative_name = os.path.relpath(path, self.local_dir)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            new_location = self._upload(relative_name, data)
        except FileNotFoundError:
            return None
        except Exception as error:  # noqa: BLE001
            self._mark_unavailable("upload of a local piece", error)
            return None
        log.info("uploaded local checkpoint piece to GCS", extra={"from_location": location, "location": new_location})
        return new_location
