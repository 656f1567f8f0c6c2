"""Checks on a job submission that JSON Schema cannot express."""

from __future__ import annotations

from stream_processing.http_api import ApiError


def check_job_spec(spec: dict) -> None:
    """Raises ApiError(400) listing every problem; the schema has already been checked."""
    problems = []
    operators = spec.get("operators", [])
    windows = [index for index, op in enumerate(operators) if op["type"] == "tumbling_window"]
    if len(windows) > 1:
        problems.append(f"operators: only one tumbling_window is allowed, found {len(windows)}")
    if windows and windows[-1] != len(operators) - 1:
        problems.append(f"operators/{windows[-1]}: tumbling_window must be the last operator")
    if spec["source"]["topic"] == spec["sink"]["topic"]:
        problems.append("sink/topic: must differ from source/topic, or the job would read its own output")
    if problems:
        raise ApiError(400, "invalid job specification", problems=problems)
