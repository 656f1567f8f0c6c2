"""JobManager leader election through a PostgreSQL session advisory lock.

Every JobManager keeps one dedicated connection and, while it is not the leader, waits for
pg_advisory_lock in rounds of SP_LEADER_POLL_SECONDS (lock_timeout), reading the leader row between
rounds. A waiting standby gets the lock the moment it is released. The lock belongs to that session:
it is held for as long as the connection lives and PostgreSQL releases it the moment the session
ends (a killed process closes its socket; a vanished host is detected by the TCP keepalives below).
The leader renews the `jobmanager_leader` row on the same connection every poll, so a broken
session is noticed within one poll plus the TCP user timeout, and leadership is given up at once.
The row tells the standbys which JobManager leads and at which URL.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import psycopg

from stream_processing.jobmanager.job_store import DatabaseUnavailable, JobStore

log = logging.getLogger(__name__)

LEADER_LOCK_ID = 0x5350_4C44


@dataclass(frozen=True)
class Leader:
    leader_id: str
    url: str
    term: int
    since: datetime
    heartbeat_age_seconds: float

    def as_json(self) -> dict:
        return {"leader_id": self.leader_id, "url": self.url, "term": self.term, "since": self.since.isoformat(),
                "heartbeat_age_seconds": round(self.heartbeat_age_seconds, 3)}


def session_options(poll_seconds: float) -> dict:
    """Connection settings that make a lost leader notice before PostgreSQL frees the lock for another.

    The leader gives up after one failed renewal: at most a poll plus tcp_user_timeout. The server
    frees the lock of a silently vanished client only after its keepalive idle time plus three probes,
    which is longer.
    """
    client_timeout_ms = int(max(1.0, 2 * poll_seconds) * 1000)
    lock_wait_ms = max(1, int(poll_seconds * 1000))
    server_idle = max(2, math.ceil(4 * poll_seconds))
    server_interval = max(1, math.ceil(poll_seconds))
    return {
        "application_name": "sp-jobmanager-leader-election",
        "keepalives": 1, "keepalives_idle": server_interval, "keepalives_interval": server_interval,
        "keepalives_count": 3, "tcp_user_timeout": client_timeout_ms,
        "options": f"-c statement_timeout={client_timeout_ms} -c lock_timeout={lock_wait_ms}"
                   f" -c tcp_keepalives_idle={server_idle}"
                   f" -c tcp_keepalives_interval={server_interval} -c tcp_keepalives_count=3",
    }


class LeaderElection:
    """Campaigns for leadership and keeps the last known leader; callbacks run on the election thread."""

    def __init__(self, store: JobStore, jobmanager_id: str, advertised_url: str, poll_seconds: float,
                 on_elected: Callable[[], None], on_revoked: Callable[[str], None]):
        self.store = store
        self.jobmanager_id = jobmanager_id
        self.advertised_url = advertised_url
        self.poll_seconds = poll_seconds
        self.on_elected = on_elected
        self.on_revoked = on_revoked
        self.leading = False
        self.leader: Leader | None = None
        self.last_error: str | None = None
        self._connection: psycopg.Connection | None = None
        self._stopped = threading.Event()
        self._round_seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    def start(self) -> None:
        """One round right away (a lone JobManager leads before it reports ready), then one per poll."""
        self._round()
        self.thread.start()

    def stop(self) -> None:
        """Stops campaigning; a leader stops leading, then releases the lock so a standby takes over at once."""
        self._stopped.set()
        waiting = self._connection
        if waiting is not None and not self.leading:
            with contextlib.suppress(psycopg.Error):
                waiting.cancel_safe(timeout=2)  # ends a standby's wait for the lock now, not after lock_timeout
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        if self.leading and self._connection is not None:
            self._revoke("shutting down")
            try:
                self._connection.execute("DELETE FROM jobmanager_leader WHERE leader_id = %s AND term = %s",
                                         (self.jobmanager_id, self.leader.term))
                log.info("leadership released", extra={"term": self.leader.term})
            except psycopg.Error as error:
                log.warning("could not clear the leader row (the lock is released anyway): %s", error)
        self._close()

    def _run(self) -> None:
        # A standby's round already waited on the lock; a leader's renewal or a failed round did not.
        while not self._stopped.wait(max(0.0, self.poll_seconds - self._round_seconds)):
            try:
                self._round()
            except Exception:  # noqa: BLE001 - the election must keep running
                log.exception("leader election round failed")

    def _round(self) -> None:
        started = time.monotonic()
        try:
            self.poll_once()
        finally:
            self._round_seconds = time.monotonic() - started

    def poll_once(self) -> None:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = self.store.session(**session_options(self.poll_seconds))
            if self.leading:
                self._renew()
            else:
                self._campaign()
            self.last_error = None
        except (psycopg.Error, DatabaseUnavailable) as error:
            self.last_error = f"{type(error).__name__}: {error}".strip()
            self._close()
            if self.leading:
                log.error("leadership lost: the database session holding the leader lock failed: %s", error)
                self._revoke("database session lost")

    def _campaign(self) -> None:
        connection = self._connection
        try:
            connection.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK_ID,))
        except psycopg.errors.LockNotAvailable:  # lock_timeout: another JobManager leads
            self._follow(connection)
            return
        term, since = connection.execute(
            "INSERT INTO jobmanager_leader (leader_id, advertised_url, term, since, heartbeat)"
            " VALUES (%s, %s, 1, now(), now()) ON CONFLICT (singleton) DO UPDATE SET"
            " leader_id = EXCLUDED.leader_id, advertised_url = EXCLUDED.advertised_url,"
            " term = jobmanager_leader.term + 1, since = now(), heartbeat = now()"
            " RETURNING term, since",
            (self.jobmanager_id, self.advertised_url),
        ).fetchone()
        self.leader = Leader(self.jobmanager_id, self.advertised_url, term, since, 0.0)
        log.info("elected leader; loading state from the database", extra={"term": term})
        try:
            self.on_elected()
        except Exception:
            log.exception("taking over as leader failed; releasing the leader lock")
            self._close()
            return
        self.leading = True
        log.info("leading", extra={"term": term, "advertised_url": self.advertised_url})

    def _follow(self, connection: psycopg.Connection) -> None:
        row = connection.execute(
            "SELECT leader_id, advertised_url, term, since, extract(epoch FROM now() - heartbeat)::float8"
            " FROM jobmanager_leader"
        ).fetchone()
        leader = Leader(*row) if row else None
        previous = self.leader
        if leader and (previous is None or (leader.leader_id, leader.term) != (previous.leader_id, previous.term)):
            log.info("following leader", extra={"leader_id": leader.leader_id, "leader_url": leader.url,
                                                "term": leader.term})
        self.leader = leader

    def _renew(self) -> None:
        renewed = self._connection.execute(
            "UPDATE jobmanager_leader SET heartbeat = now() WHERE leader_id = %s AND term = %s",
            (self.jobmanager_id, self.leader.term),
        ).rowcount
        if renewed != 1:
            log.error("leadership lost: the leader row names another JobManager")
            self._close()
            self._revoke("leader row taken over")

    def _revoke(self, reason: str) -> None:
        self.leading = False
        self.on_revoked(reason)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()
