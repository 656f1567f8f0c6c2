"""PostgreSQL: SQL round trips in per-test databases, password authentication, restart."""

import psycopg
import pytest

from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.integration


def test_sql_round_trip_in_a_database_of_its_own(postgres_server, postgres_database):
    with psycopg.connect(postgres_server.dsn(postgres_database)) as connection:
        connection.execute("CREATE TABLE checkpoints (id serial PRIMARY KEY, job text NOT NULL, state jsonb)")
        connection.execute(
            "INSERT INTO checkpoints (job, state) VALUES (%s, %s), (%s, %s)",
            ("job-a", '{"offset": 1}', "job-b", '{"offset": 2}'),
        )
        connection.commit()
        rows = connection.execute("SELECT job, state->>'offset' FROM checkpoints ORDER BY id").fetchall()

    assert rows == [("job-a", "1"), ("job-b", "2")]


def test_databases_are_isolated_and_dropped(postgres_server):
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    with psycopg.connect(postgres_server.dsn(first)) as connection:
        connection.execute("CREATE TABLE only_in_first (x int)")

    with psycopg.connect(postgres_server.dsn(second), autocommit=True) as connection:
        assert connection.execute("SELECT to_regclass('only_in_first')").fetchone() == (None,)
        # FORCE disconnects sessions still using the database, as a crashed test would leave them.
        postgres_server.drop_database(second)
        with pytest.raises(psycopg.OperationalError):
            connection.execute("SELECT 1")

    with postgres_server.connect() as connection:
        names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
    assert first in names
    assert second not in names
    postgres_server.drop_database(first)


def test_tcp_connections_need_the_password(postgres_server):
    with psycopg.connect(postgres_server.dsn(with_password=False), password=postgres_server.password) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres_server.dsn(with_password=False), password="wrong-password")


def test_server_listens_on_loopback_only(postgres_server):
    with postgres_server.connect() as connection:
        settings = dict(
            connection.execute("SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'fsync')")
        )
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off"}


def test_stop_and_start_keep_the_port_and_the_data():
    with PostgresServer() as server:
        database = server.create_database("kept_across_restarts")
        with psycopg.connect(server.dsn(database)) as connection:
            connection.execute("CREATE TABLE t AS SELECT 42 AS answer")
        dsn = server.dsn(database)

        server.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)
        server.start()

        assert server.dsn(database) == dsn
        with psycopg.connect(dsn) as connection:
            assert connection.execute("SELECT answer FROM t").fetchone() == (42,)
    assert not server.workdir.exists()
