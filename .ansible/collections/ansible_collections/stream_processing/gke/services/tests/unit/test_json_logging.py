from __future__ import annotations

import json
import logging
import sys

from stream_processing.json_logging import JsonFormatter


def test_log_lines_are_json_with_extra_fields_and_exceptions():
    formatter = JsonFormatter("taskmanager")
    record = logging.makeLogRecord({"name": "x", "levelname": "WARNING", "msg": "piece %s stored", "args": ("p1",),
                                    "job_id": "j-1"})
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "piece p1 stored"
    assert (entry["level"], entry["role"], entry["job_id"]) == ("WARNING", "taskmanager", "j-1")
    assert "ValueError: boom" in entry["exception"]
    assert entry["time"].endswith("+00:00")
