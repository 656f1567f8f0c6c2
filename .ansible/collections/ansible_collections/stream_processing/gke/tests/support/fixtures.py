"""pytest plugin: real PostgreSQL, Kafka and fake-gcs-server for tests, all on 127.0.0.1.

Enable it with `pytest -p tests.support.fixtures` (or `pytest_plugins` in the root conftest.py), or
import the fixtures you need into a conftest.py (then the SIGTERM handling below is not enabled).
Servers start on first use, once per session; each test isolates itself with its own database,
topic or bucket (the function-scoped fixtures below).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from .gcs_emulator import GcsEmulator
from .kafka_broker import KafkaBroker
from .postgres_server import PostgresServer


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"pytest received signal {signum}")


def pytest_configure() -> None:
    # SIGTERM (e.g. from `timeout` or CI cancelling a job) would end Python without running
    # fixture finalizers; as an interrupt, the servers are stopped and their directories removed.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """fake-gcs-server (memory backend) shared by the session. Stopping it loses its buckets, so a
    test that needs an outage uses `isolated_gcs_emulator` instead."""
    with GcsEmulator(backend="memory") as emulator:
        yield emulator


@pytest.fixture
def isolated_gcs_emulator() -> Iterator[GcsEmulator]:
    """A fake-gcs-server for this test alone (starts in about 0.1 s), free to stop and restart: its
    filesystem backend keeps buckets and objects across `stop()`/`start()` (no object versioning)."""
    with GcsEmulator(backend="filesystem") as emulator:
        yield emulator


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator) -> Iterator[str]:
    """A new, empty bucket on the session emulator; deleted after the test."""
    if not gcs_emulator.running:
        gcs_emulator.start()
    name = gcs_emulator.create_bucket()
    yield name
    if gcs_emulator.running and gcs_emulator.bucket_exists(name):
        gcs_emulator.delete_bucket(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster shared by the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database; its DSN is `postgres_server.dsn(postgres_database)`. Dropped after the test."""
    name = postgres_server.create_database()
    yield name
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A single-node KRaft Kafka broker shared by the session (3-7 s to start on 2 busy cores)."""
    with KafkaBroker() as broker:
        yield broker
