"""Service configuration, read once from SP_* environment variables into a frozen dataclass."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

ROLES = ("jobmanager", "taskmanager")
DEFAULT_PORTS = {"jobmanager": 8081, "taskmanager": 8082}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
INSTANCE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class ConfigError(ValueError):
    """A configuration variable is missing or has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Config:
    role: str
    http_host: str = "0.0.0.0"
    http_port: int = 8081
    http_threads: int = 8
    max_request_bytes: int = 1_048_576
    database_url: str = ""
    database_password: str | None = field(default=None, repr=False)
    kafka_bootstrap: str = ""
    gcs_bucket: str = ""
    gcs_prefix: str = "checkpoints"
    gcs_timeout_seconds: float = 10.0
    storage_probe_interval_seconds: float = 10.0
    checkpoint_dir: str = "/var/lib/stream-processing/checkpoints"
    checkpoint_interval_seconds: float = 30.0
    checkpoint_timeout_seconds: float = 120.0
    checkpoint_retained: int = 3
    heartbeat_interval_seconds: float = 3.0
    heartbeat_timeout_seconds: float = 15.0
    jobmanager_url: str = ""
    taskmanager_id: str = ""
    taskmanager_slots: int = 2
    log_level: str = "INFO"
    shutdown_grace_seconds: float = 25.0
    advertised_url: str = ""
    jobmanager_id: str = ""
    leader_poll_seconds: float = 1.0


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def _number(env: Mapping[str, str], name: str, default, kind, minimum, maximum=None):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{name}={raw!r} must be {bounds}")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], required: bool) -> str:
    value = _text(env, name, "")
    if not value:
        if required:
            raise ConfigError(f"{name} is required (expected a {' or '.join(schemes)} URL)")
        return ""
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ConfigError(f"{name}={value!r} must start with {' or '.join(s + '://' for s in schemes)}")
    return value.rstrip("/")


def _instance_id(env: Mapping[str, str], name: str) -> str:
    value = _text(env, name, "") or socket.gethostname()
    if not INSTANCE_ID_PATTERN.fullmatch(value):
        raise ConfigError(f"{name}={value!r} must match {INSTANCE_ID_PATTERN.pattern}")
    return value


def _advertised_url(env: Mapping[str, str], role: str, http_host: str, http_port: int) -> str:
    """How the other JobManagers reach this one; derived from SP_HTTP_HOST/PORT only when they name one address."""
    if role != "jobmanager":
        return ""
    explicit = _url(env, "SP_ADVERTISED_URL", ("http", "https"), required=False)
    if explicit:
        if not urlsplit(explicit).hostname or urlsplit(explicit).hostname in WILDCARD_HOSTS:
            raise ConfigError(f"SP_ADVERTISED_URL={explicit!r} must name a host the other JobManagers can reach")
        return explicit
    if http_host in WILDCARD_HOSTS or http_port == 0:
        raise ConfigError(
            f"SP_ADVERTISED_URL is required when SP_HTTP_HOST={http_host!r} and SP_HTTP_PORT={http_port} do not name "
            "one reachable address (on Kubernetes: http://$(POD_IP):8081 from the Downward API)"
        )
    host = f"[{http_host}]" if ":" in http_host else http_host
    return f"http://{host}:{http_port}"


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the Config for SP_ROLE from env (default os.environ); raises ConfigError naming the bad variable."""
    env = os.environ if env is None else env
    role = _text(env, "SP_ROLE", "")
    if role not in ROLES:
        raise ConfigError(f"SP_ROLE={role!r} must be one of {', '.join(ROLES)}")
    log_level = _text(env, "SP_LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"SP_LOG_LEVEL={log_level!r} must be one of {', '.join(LOG_LEVELS)}")
    kafka_bootstrap = _text(env, "SP_KAFKA_BOOTSTRAP", "")
    if role == "taskmanager" and not kafka_bootstrap:
        raise ConfigError("SP_KAFKA_BOOTSTRAP is required for the taskmanager (host:port[,host:port])")
    for broker in filter(None, kafka_bootstrap.split(",")):
        host, _separator, port = broker.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"SP_KAFKA_BOOTSTRAP={kafka_bootstrap!r} must be a list of host:port")
    gcs_bucket = _text(env, "SP_GCS_BUCKET", "")
    if gcs_bucket and not (3 <= len(gcs_bucket) <= 222) or "/" in gcs_bucket:
        raise ConfigError(f"SP_GCS_BUCKET={gcs_bucket!r} is not a bucket name (no gs:// prefix, 3-222 characters)")
    checkpoint_dir = _text(env, "SP_CHECKPOINT_DIR", Config.checkpoint_dir)
    if not os.path.isabs(checkpoint_dir):
        raise ConfigError(f"SP_CHECKPOINT_DIR={checkpoint_dir!r} must be an absolute path")
    heartbeat_interval = _number(env, "SP_HEARTBEAT_INTERVAL_SECONDS", Config.heartbeat_interval_seconds, float, 0.05)
    heartbeat_timeout = _number(env, "SP_HEARTBEAT_TIMEOUT_SECONDS", Config.heartbeat_timeout_seconds, float, 0.1)
    if heartbeat_timeout <= heartbeat_interval:
        raise ConfigError(
            f"SP_HEARTBEAT_TIMEOUT_SECONDS={heartbeat_timeout} must be greater than "
            f"SP_HEARTBEAT_INTERVAL_SECONDS={heartbeat_interval}"
        )
    taskmanager_id = _instance_id(env, "SP_TASKMANAGER_ID")
    jobmanager_id = _instance_id(env, "SP_JOBMANAGER_ID")
    http_host = _text(env, "SP_HTTP_HOST", Config.http_host)
    http_port = _number(env, "SP_HTTP_PORT", DEFAULT_PORTS[role], int, 0, 65535)
    return Config(
        role=role,
        http_host=http_host,
        http_port=http_port,
        http_threads=_number(env, "SP_HTTP_THREADS", Config.http_threads, int, 1, 256),
        max_request_bytes=_number(env, "SP_MAX_REQUEST_BYTES", Config.max_request_bytes, int, 1024),
        database_url=_url(env, "SP_DATABASE_URL", ("postgresql", "postgres"), required=role == "jobmanager"),
        database_password=env.get("SP_DATABASE_PASSWORD") or None,
        kafka_bootstrap=kafka_bootstrap,
        gcs_bucket=gcs_bucket,
        gcs_prefix=_text(env, "SP_GCS_PREFIX", Config.gcs_prefix).strip("/"),
        gcs_timeout_seconds=_number(env, "SP_GCS_TIMEOUT_SECONDS", Config.gcs_timeout_seconds, float, 0.1),
        storage_probe_interval_seconds=_number(
            env, "SP_STORAGE_PROBE_INTERVAL_SECONDS", Config.storage_probe_interval_seconds, float, 0.1
        ),
        checkpoint_dir=checkpoint_dir,
        checkpoint_interval_seconds=_number(
            env, "SP_CHECKPOINT_INTERVAL_SECONDS", Config.checkpoint_interval_seconds, float, 0.1
        ),
        checkpoint_timeout_seconds=_number(
            env, "SP_CHECKPOINT_TIMEOUT_SECONDS", Config.checkpoint_timeout_seconds, float, 0.5
        ),
        checkpoint_retained=_number(env, "SP_CHECKPOINT_RETAINED", Config.checkpoint_retained, int, 1, 1000),
        heartbeat_interval_seconds=heartbeat_interval,
        heartbeat_timeout_seconds=heartbeat_timeout,
        jobmanager_url=_url(env, "SP_JOBMANAGER_URL", ("http", "https"), required=role == "taskmanager"),
        taskmanager_id=taskmanager_id,
        taskmanager_slots=_number(env, "SP_TASKMANAGER_SLOTS", Config.taskmanager_slots, int, 1, 256),
        log_level=log_level,
        shutdown_grace_seconds=_number(env, "SP_SHUTDOWN_GRACE_SECONDS", Config.shutdown_grace_seconds, float, 0),
        advertised_url=_advertised_url(env, role, http_host, http_port),
        jobmanager_id=jobmanager_id,
        leader_poll_seconds=_number(env, "SP_LEADER_POLL_SECONDS", Config.leader_poll_seconds, float, 0.05, 60),
    )
