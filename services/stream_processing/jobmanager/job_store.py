"""PostgreSQL persistence of jobs, task assignments, TaskManagers and checkpoint metadata."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from importlib import resources

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "stream_processing.jobmanager.migrations"
# Serialises migrations when several JobManagers start at once.
MIGRATION_LOCK_ID = 0x5350_4D49


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer or refused the statement."""


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every NNNN_name.sql file, in version order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        if entry.name.endswith(".sql"):
            version, _separator, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text()))
    return sorted(found)


class JobStore:
    def __init__(self, database_url: str, password: str | None = None, pool_size: int = 4):
        extra = {"password": password} if password else {}
        self.conninfo = make_conninfo(database_url, connect_timeout=5, application_name="sp-jobmanager", **extra)
        self.pool = ConnectionPool(self.conninfo, min_size=1, max_size=pool_size, open=False, timeout=5,
                                   kwargs={"options": "-c statement_timeout=10000"})

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=2)

    def session(self, **options) -> psycopg.Connection:
        """A dedicated autocommit connection outside the pool, for state tied to one session (advisory locks)."""
        try:
            return psycopg.connect(make_conninfo(self.conninfo, **options), autocommit=True)
        except psycopg.OperationalError as error:
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {error}") from error

    @contextmanager
    def transaction(self):
        """A connection inside one transaction: everything in the block is written, or nothing."""
        try:
            with self.pool.connection() as connection, connection.transaction():
                yield connection
        except (psycopg.OperationalError, psycopg.errors.QueryCanceled, PoolTimeout) as error:
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {error}") from error

    def ping(self) -> None:
        with self.transaction() as connection:
            connection.execute("SELECT 1")

    def migrate(self, wait_seconds: float = 60.0) -> int:
        """Applies pending migrations in one transaction; retries while the database is not reachable yet."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                return self._apply_migrations()
            except DatabaseUnavailable as error:
                if time.monotonic() > deadline:
                    raise
                log.warning("waiting for PostgreSQL before migrating: %s", error)
                time.sleep(1)

    def _apply_migrations(self) -> int:
        with self.transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {row[0] for row in connection.execute("SELECT version FROM schema_version")}
            current = max(applied, default=0)
            for version, name, sql in migration_files():
                if version in applied:
                    continue
                log.info("applying database migration %04d_%s", version, name)
                connection.execute(sql)
                connection.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, name))
                current = version
            return current

    # Reads used at start-up -------------------------------------------------------------------------
    def load_active_jobs(self) -> list[dict]:
        with self.transaction() as connection, connection.cursor(row_factory=dict_row) as cursor:
            jobs = cursor.execute(
                "SELECT job_id, name, spec, parallelism, state, restarts, created_at FROM jobs"
                " WHERE state <> 'cancelled' ORDER BY created_at"
            ).fetchall()
            tasks = cursor.execute(
                "SELECT t.job_id, t.task_index, t.taskmanager_id, t.attempt FROM task_assignments t"
                " JOIN jobs j USING (job_id) WHERE j.state <> 'cancelled' ORDER BY t.job_id, t.task_index"
            ).fetchall()
            for job in jobs:
                job["tasks"] = [t for t in tasks if t["job_id"] == job["job_id"]]
            return jobs

    def load_cancelled_jobs(self, limit: int = 100) -> list[dict]:
        with self.transaction() as connection, connection.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(
                "SELECT job_id, name, spec, parallelism, state, restarts, created_at FROM jobs"
                " WHERE state = 'cancelled' ORDER BY created_at DESC LIMIT %s", (limit,)
            ).fetchall()

    def load_taskmanagers(self) -> list[dict]:
        with self.transaction() as connection, connection.cursor(row_factory=dict_row) as cursor:
            return cursor.execute("SELECT taskmanager_id, slots, registered_at FROM taskmanagers").fetchall()

    def load_checkpoints(self) -> tuple[list[dict], list[dict]]:
        """Completed checkpoints and their pieces; pending ones left by a previous process are failed first."""
        with self.transaction() as connection, connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                "UPDATE checkpoints SET state = 'failed', failure_reason = 'JobManager restarted'"
                " WHERE state = 'pending'"
            )
            checkpoints = cursor.execute(
                "SELECT job_id, checkpoint_id, state, triggered_at, completed_at, failure_reason FROM checkpoints"
                " ORDER BY job_id, checkpoint_id"
            ).fetchall()
            pieces = cursor.execute(
                "SELECT p.* FROM checkpoint_pieces p JOIN checkpoints c USING (job_id, checkpoint_id)"
                " WHERE c.state = 'completed'"
            ).fetchall()
            return checkpoints, pieces

    # Writes -----------------------------------------------------------------------------------------
    @staticmethod
    def insert_job(connection, job_id: str, name: str, spec: dict, parallelism: int, state: str) -> None:
        connection.execute(
            "INSERT INTO jobs (job_id, name, spec, parallelism, state) VALUES (%s, %s, %s, %s, %s)",
            (job_id, name, Jsonb(spec), parallelism, state),
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO task_assignments (job_id, task_index) VALUES (%s, %s)",
                [(job_id, index) for index in range(parallelism)],
            )

    @staticmethod
    def update_job(connection, job_id: str, state: str, restarts: int) -> None:
        connection.execute(
            "UPDATE jobs SET state = %s, restarts = %s, updated_at = now() WHERE job_id = %s",
            (state, restarts, job_id),
        )

    @staticmethod
    def update_assignment(connection, job_id: str, task_index: int, taskmanager_id: str | None,
                          attempt: int) -> None:
        connection.execute(
            "UPDATE task_assignments SET taskmanager_id = %s, attempt = %s WHERE job_id = %s AND task_index = %s",
            (taskmanager_id, attempt, job_id, task_index),
        )

    @staticmethod
    def upsert_taskmanager(connection, taskmanager_id: str, slots: int) -> None:
        connection.execute(
            "INSERT INTO taskmanagers (taskmanager_id, slots) VALUES (%s, %s)"
            " ON CONFLICT (taskmanager_id) DO UPDATE SET slots = EXCLUDED.slots",
            (taskmanager_id, slots),
        )

    @staticmethod
    def delete_taskmanager(connection, taskmanager_id: str) -> None:
        connection.execute("DELETE FROM taskmanagers WHERE taskmanager_id = %s", (taskmanager_id,))

    @staticmethod
    def insert_pending_checkpoint(connection, job_id: str, checkpoint_id: int, triggered_at) -> None:
        connection.execute(
            "INSERT INTO checkpoints (job_id, checkpoint_id, state, triggered_at) VALUES (%s, %s, 'pending', %s)",
            (job_id, checkpoint_id, triggered_at),
        )

    @staticmethod
    def fail_checkpoint(connection, job_id: str, checkpoint_id: int, reason: str) -> None:
        connection.execute(
            "UPDATE checkpoints SET state = 'failed', failure_reason = %s WHERE job_id = %s AND checkpoint_id = %s",
            (reason, job_id, checkpoint_id),
        )

    @staticmethod
    def complete_checkpoint(connection, job_id: str, checkpoint_id: int, pieces: list[dict],
                            discarded_ids: list[int]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO checkpoint_pieces (job_id, checkpoint_id, task_index, attempt, taskmanager_id,"
                " storage, location, size_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(job_id, checkpoint_id, p["task_index"], p["attempt"], p["taskmanager_id"], p["storage"],
                  p["location"], p["size_bytes"]) for p in pieces],
            )
        connection.execute(
            "UPDATE checkpoints SET state = 'completed', completed_at = now() WHERE job_id = %s AND checkpoint_id = %s",
            (job_id, checkpoint_id),
        )
        if discarded_ids:
            connection.execute(
                "DELETE FROM checkpoint_pieces WHERE job_id = %s AND checkpoint_id = ANY(%s)", (job_id, discarded_ids)
            )
            connection.execute(
                "UPDATE checkpoints SET state = 'discarded' WHERE job_id = %s AND checkpoint_id = ANY(%s)",
                (job_id, discarded_ids),
            )

    @staticmethod
    def relocate_piece(connection, job_id: str, checkpoint_id: int, task_index: int, from_location: str,
                       location: str) -> bool:
        cursor = connection.execute(
            "UPDATE checkpoint_pieces SET storage = 'gcs', location = %s"
            " WHERE job_id = %s AND checkpoint_id = %s AND task_index = %s AND location = %s",
            (location, job_id, checkpoint_id, task_index, from_location),
        )
        return cursor.rowcount == 1

    @staticmethod
    def list_checkpoints(connection, job_id: str, limit: int = 100) -> list[dict]:
        with connection.cursor(row_factory=dict_row) as cursor:
            checkpoints = cursor.execute(
                "SELECT checkpoint_id, state, triggered_at, completed_at, failure_reason FROM checkpoints"
                " WHERE job_id = %s ORDER BY checkpoint_id DESC LIMIT %s", (job_id, limit),
            ).fetchall()
            pieces = cursor.execute(
                "SELECT checkpoint_id, task_index, attempt, taskmanager_id, storage, location, size_bytes"
                " FROM checkpoint_pieces WHERE job_id = %s ORDER BY task_index", (job_id,),
            ).fetchall()
        for checkpoint in checkpoints:
            checkpoint["pieces"] = [
                {k: v for k, v in p.items() if k != "checkpoint_id"}
                for p in pieces if p["checkpoint_id"] == checkpoint["checkpoint_id"]
            ]
        return checkpoints
