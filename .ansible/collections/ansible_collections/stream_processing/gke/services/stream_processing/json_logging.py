"""One JSON object per log line on stderr, so log collectors need no parsing rules."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with extra={...} become top-level keys.
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(role: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The GCS and HTTP client libraries log every retry at INFO; their failures reach us as exceptions.
    for noisy in ("urllib3", "google", "waitress.queue"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))

    # Crashes in any thread are logged as JSON too, instead of bare tracebacks on stderr.
    crash_log = logging.getLogger("stream_processing.crash")
    sys.excepthook = lambda kind, value, trace: crash_log.critical("uncaught error", exc_info=(kind, value, trace))
    threading.excepthook = lambda hook: crash_log.critical(
        "uncaught error in thread %s", hook.thread.name if hook.thread else "?",
        exc_info=(hook.exc_type, hook.exc_value, hook.exc_traceback),
    )
