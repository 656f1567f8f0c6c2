"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests, from Debian's postgresql package."""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import signal
import subprocess
import uuid
from pathlib import Path

from .processes import LocalServer, ManagedProcess, ProcessError, free_loopback_port, provisioned_path

SUPERUSER = "postgres"
# Root may not run the server; Debian's package creates this account for it.
SERVER_ACCOUNT = "postgres"

# Durability is worthless for a cluster that lives as long as a test session.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


@functools.cache
def postgresql_bindir() -> Path:
    """Install PostgreSQL if needed (see tools/deps/postgresql.sh) and return its bin directory."""
    return provisioned_path("tools/deps/postgresql.sh")


class PostgresServer(LocalServer):
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 and a private socket dir.

    TCP connections authenticate with scram-sha-256 as `postgres` / `.password`; `dsn()` includes both.
    """

    def __init__(self, *, workdir: Path | None = None):
        self.bindir = postgresql_bindir()
        super().__init__("spg-postgres-", workdir)
        with self._removing_workdir_on_error():
            self.datadir = self.workdir / "data"
            self.host = "127.0.0.1"
            self.port = free_loopback_port()
            self.user = SUPERUSER
            self.password = secrets.token_urlsafe(18)
            self._account = SERVER_ACCOUNT if os.geteuid() == 0 else None
            self._initdb()
            settings = {
                **FAST_SETTINGS,
                "listen_addresses": self.host,
                "port": str(self.port),
                "unix_socket_directories": str(self.workdir),
            }
            self.process = ManagedProcess(
                "postgres",
                [self.bindir / "postgres", "-D", self.datadir]
                + [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")],
                log_path=self.workdir / "postgres.log",
                cwd=self.workdir,
                user=self._account,
                ready=self._accepts_queries,
                ready_timeout=30,
                # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
                stop_signal=signal.SIGINT,
            )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _initdb(self) -> None:
        password_file = self.workdir / "superuser-password"
        password_file.write_text(self.password + "\n")
        if self._account:
            account = pwd.getpwnam(self._account)
            for path in (self.workdir, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.workdir.chmod(0o700)
        result = subprocess.run(
            [
                self.bindir / "initdb",
                "--pgdata", self.datadir,
                "--username", self.user,
                "--pwfile", password_file,
                "--auth-local", "trust",
                "--auth-host", "scram-sha-256",
                "--encoding", "UTF8",
                "--locale", "C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            user=self._account,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        password_file.unlink()
        if result.returncode != 0:
            raise ProcessError(f"initdb failed with exit code {result.returncode}:\n{result.stdout}{result.stderr}")

    def _accepts_queries(self) -> bool:
        with self.connect(connect_timeout=2) as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)

    def dsn(self, dbname: str = "postgres", *, with_password: bool = True) -> str:
        """A libpq URL for dbname; without the password for code that takes it separately."""
        credentials = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql://{credentials}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs):
        """An autocommit psycopg connection as the superuser."""
        import psycopg

        return psycopg.connect(self.dsn(dbname), autocommit=True, **kwargs)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name by default) and return its name."""
        from psycopg import sql

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still using it."""
        from psycopg import sql

        with self.connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
