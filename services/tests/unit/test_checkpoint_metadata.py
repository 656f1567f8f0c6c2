"""Checkpoint piece naming, local fallback storage, restore-point selection and retention bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from stream_processing.checkpoint_storage import (
    STORAGE_LOCAL,
    CheckpointStorage,
    CheckpointStorageError,
    piece_name,
)
from stream_processing.config import load_config
from stream_processing.jobmanager.checkpoint_coordinator import (
    CheckpointCoordinator,
    CompletedCheckpoint,
    PendingCheckpoint,
)
from stream_processing.jobmanager.job_store import JobStore, migration_files
from stream_processing.jobmanager.resource_manager import Job


@pytest.fixture
def unreachable_gcs(monkeypatch, closed_port):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{closed_port}")


def config_for(tmp_path, **env):
    # The database is never contacted by these tests.
    return load_config({"SP_ROLE": "jobmanager", "SP_DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
                        "SP_HTTP_HOST": "127.0.0.1", "SP_CHECKPOINT_DIR": str(tmp_path),
                        "SP_GCS_TIMEOUT_SECONDS": "0.5", **env})


def test_piece_names_are_unique_per_job_checkpoint_task_and_attempt():
    assert piece_name("job", 7, 2, 1) == "job/chk-7/task-2-attempt-1.json"
    assert len({piece_name("j", c, t, a) for c in (1, 2) for t in (0, 1) for a in (0, 1)}) == 8


def test_unreachable_gcs_falls_back_to_the_local_directory(tmp_path, unreachable_gcs):
    storage = CheckpointStorage(config_for(tmp_path, SP_GCS_BUCKET="checkpoints-bucket"))
    assert storage.probe() is False
    assert "checkpoints-bucket" in storage.last_error
    stored = storage.write_piece(piece_name("job", 1, 0, 0), b'{"offsets": {}}')
    assert stored.storage == STORAGE_LOCAL
    assert stored.location == f"file://{tmp_path}/job/chk-1/task-0-attempt-0.json"
    assert storage.read_piece(stored.location) == b'{"offsets": {}}'
    assert storage.upload_local_piece(stored.location) is None  # GCS still down: the piece stays local
    storage.delete_piece(stored.location)
    with pytest.raises(CheckpointStorageError, match="cannot read"):
        storage.read_piece(stored.location)


def test_unwritable_local_directory_is_a_clear_error(tmp_path):
    (tmp_path / "job").write_text("a file where a directory should be")
    storage = CheckpointStorage(config_for(tmp_path))
    with pytest.raises(CheckpointStorageError, match="cannot write checkpoint piece"):
        storage.write_piece(piece_name("job", 1, 0, 0), b"{}")


def test_pieces_from_another_bucket_are_refused(tmp_path):
    storage = CheckpointStorage(config_for(tmp_path, SP_GCS_BUCKET="mine"))
    with pytest.raises(CheckpointStorageError, match="another bucket"):
        storage.read_piece("gs://theirs/prefix/job/chk-1/task-0-attempt-0.json")


def make_coordinator(tmp_path, **env) -> CheckpointCoordinator:
    config = config_for(tmp_path, **env)
    # The store is never opened: these methods work on in-memory metadata only.
    return CheckpointCoordinator(config, JobStore(config.database_url), CheckpointStorage(config),
                                 CollectorRegistry())


def completed(checkpoint_id: int, storage: str = "gcs", tasks: int = 2) -> CompletedCheckpoint:
    pieces = {
        index: {"task_index": index, "attempt": 0, "taskmanager_id": "tm", "storage": storage,
                "location": f"{'gs://b' if storage == 'gcs' else 'file:///d'}/job/chk-{checkpoint_id}/task-{index}",
                "size_bytes": 10}
        for index in range(tasks)
    }
    return CompletedCheckpoint(checkpoint_id, datetime.now(UTC), pieces)


def test_restore_point_is_the_newest_readable_piece(tmp_path):
    coordinator = make_coordinator(tmp_path)
    coordinator.completed["job"] = [completed(3), completed(4, storage="local")]
    assert coordinator.restore_point("job", 1) == {
        "checkpoint_id": 4, "storage": "local", "location": "file:///d/job/chk-4/task-1"}
    coordinator.mark_unreadable("job", 4, 1)
    assert coordinator.restore_point("job", 1)["checkpoint_id"] == 3
    assert coordinator.restore_point("job", 0)["checkpoint_id"] == 4
    assert coordinator.restore_point("job", 1, below=3) is None
    assert coordinator.restore_point("other-job", 0) is None


def test_storage_check_reports_degradation_while_latest_pieces_are_local(tmp_path, unreachable_gcs):
    coordinator = make_coordinator(tmp_path, SP_GCS_BUCKET="bucket")
    job = Job("job", "n", {}, 2, "running")
    coordinator.storage.gcs_available = True
    coordinator.completed["job"] = [completed(1)]
    assert coordinator.storage_check({"job": job})["status"] == "ok"
    coordinator.completed["job"].append(completed(2, storage="local"))
    check = coordinator.storage_check({"job": job})
    assert (check["status"], check["jobs_with_local_checkpoints"]) == ("degraded", 1)
    coordinator.storage.probe()
    assert coordinator.storage_check({})["mode"] == "local"


def test_requested_checkpoint_only_for_tasks_that_have_not_reported(tmp_path):
    coordinator = make_coordinator(tmp_path)
    coordinator.pending["job"] = PendingCheckpoint("job", 5, datetime.now(UTC), 0.0, {0: {}})
    coordinator.completed["job"] = [completed(3), completed(4)]
    assert coordinator.requested_checkpoint("job", 0) is None
    assert coordinator.requested_checkpoint("job", 1) == 5
    assert coordinator.retained_ids("job") == [3, 4, 5]


def test_migrations_are_numbered_without_gaps():
    versions = [version for version, _name, _sql in migration_files()]
    assert versions == list(range(1, len(versions) + 1))
    assert all(sql.strip() for _version, _name, sql in migration_files())
