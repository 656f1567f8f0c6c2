"""The JobManager's OpenAPI document; request validation uses its component schemas, so both stay in step."""

from __future__ import annotations

from functools import cache

from jsonschema import Draft202012Validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}$"
FIELD = {"type": "string", "minLength": 1, "maxLength": 200}
TOPIC = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,249}$"}
JOB_ID = {"type": "string", "format": "uuid"}
TASKMANAGER_ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
COUNT = {"type": "integer", "minimum": 0}
LOCATION = {"type": "string", "pattern": r"^(gs|file)://.+", "maxLength": 2048}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _when(operator_type: str, schema: str) -> dict:
    return {"if": {"properties": {"type": {"const": operator_type}}}, "then": _ref(schema)}


SCHEMAS = {
    "JobSubmission": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "source", "sink"],
        "properties": {
            "name": {"type": "string", "pattern": NAME},
            "parallelism": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1},
            "source": {
                "type": "object",
                "additionalProperties": False,
                "required": ["topic"],
                "properties": {"topic": TOPIC, "start": {"enum": ["earliest", "latest"], "default": "earliest"}},
            },
            "sink": {
                "type": "object", "additionalProperties": False, "required": ["topic"], "properties": {"topic": TOPIC},
            },
            "operators": {"type": "array", "maxItems": 20, "items": _ref("Operator")},
        },
    },
    "Operator": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["filter", "map", "tumbling_window"]}},
        "allOf": [_when("filter", "FilterOperator"), _when("map", "MapOperator"),
                  _when("tumbling_window", "TumblingWindowOperator")],
    },
    "FilterOperator": {
        "description": "Keeps records whose field compares true with value (exists: the field is present).",
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "field", "op"],
        "properties": {
            "type": {"const": "filter"},
            "field": FIELD,
            "op": {"enum": ["eq", "ne", "gt", "ge", "lt", "le", "exists", "in"]},
            "value": {"type": ["string", "number", "boolean", "null", "array"]},
        },
        "allOf": [
            {"if": {"properties": {"op": {"const": "in"}}}, "then": {
                "required": ["value"], "properties": {"value": {"type": "array", "maxItems": 1000}}}},
            {"if": {"properties": {"op": {"enum": ["eq", "ne", "gt", "ge", "lt", "le"]}}}, "then": {
                "required": ["value"], "properties": {"value": {"type": ["string", "number", "boolean", "null"]}}}},
        ],
    },
    "MapOperator": {
        "description": "Projects and renames: the output record has exactly these fields, {output: input_field}.",
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "fields"],
        "properties": {
            "type": {"const": "map"},
            "fields": {"type": "object", "minProperties": 1, "maxProperties": 100,
                       "propertyNames": {"minLength": 1, "maxLength": 200}, "additionalProperties": FIELD},
        },
    },
    "TumblingWindowOperator": {
        "description": "Keyed event-time tumbling window with count (and sum); must be the last operator.",
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "key_field", "time_field", "size_ms"],
        "properties": {
            "type": {"const": "tumbling_window"},
            "key_field": FIELD,
            "time_field": FIELD,
            "size_ms": {"type": "integer", "minimum": 1, "maximum": 604_800_000},
            "sum_field": FIELD,
            "idle_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 86_400_000},
        },
    },
    "TaskManagerRegistration": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "slots"],
        "properties": {"id": TASKMANAGER_ID, "slots": {"type": "integer", "minimum": 1, "maximum": 256}},
    },
    "Heartbeat": {
        "type": "object",
        "additionalProperties": False,
        "required": ["slots", "tasks"],
        "properties": {
            "slots": {"type": "integer", "minimum": 1, "maximum": 256},
            "tasks": {"type": "array", "maxItems": 256, "items": _ref("TaskStatus")},
            "checkpoint_reports": {"type": "array", "maxItems": 4096, "items": _ref("CheckpointReport")},
            "relocated_pieces": {"type": "array", "maxItems": 4096, "items": _ref("PieceRelocation")},
        },
    },
    "TaskStatus": {
        "type": "object",
        "required": ["job_id", "task_index", "attempt", "status"],
        "properties": {
            "job_id": JOB_ID, "task_index": COUNT, "attempt": COUNT,
            "status": {"enum": ["starting", "running", "stopped", "failed"]},
            "error": {"type": ["string", "null"], "maxLength": 4000},
            "restore_failed_checkpoint": {"type": ["integer", "null"]},
            "records_in": COUNT, "records_out": COUNT, "last_checkpoint_id": COUNT,
        },
    },
    "CheckpointReport": {
        "type": "object",
        "required": ["job_id", "checkpoint_id", "task_index", "attempt", "storage", "location", "size_bytes"],
        "properties": {
            "job_id": JOB_ID, "checkpoint_id": {"type": "integer", "minimum": 1}, "task_index": COUNT,
            "attempt": COUNT, "storage": {"enum": ["gcs", "local"]}, "location": LOCATION, "size_bytes": COUNT,
            "duration_ms": {"type": "number", "minimum": 0},
        },
    },
    "PieceRelocation": {
        "type": "object",
        "required": ["job_id", "checkpoint_id", "task_index", "from_location", "location"],
        "properties": {
            "job_id": JOB_ID, "checkpoint_id": {"type": "integer", "minimum": 1}, "task_index": COUNT,
            "attempt": COUNT, "from_location": LOCATION, "location": LOCATION,
        },
    },
    "CheckpointTrigger": {"type": "object", "additionalProperties": False, "properties": {}},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "problems": {"type": "array", "items": {"type": "string"}}},
    },
    "Job": {
        "type": "object",
        "properties": {
            "job_id": JOB_ID,
            "name": {"type": "string"},
            "state": {"enum": ["scheduled", "running", "restarting", "cancelled"]},
            "parallelism": {"type": "integer"}, "restarts": COUNT, "spec": _ref("JobSubmission"),
            "created_at": {"type": "string", "format": "date-time"},
            "last_completed_checkpoint_id": {"type": ["integer", "null"]},
            "tasks": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "timestamp", "checks"],
        "properties": {
            "status": {"enum": ["healthy", "degraded", "unhealthy", "shutting_down"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "checks": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"enum": ["ok", "degraded", "failing"]}},
                },
            },
        },
    },
}


def _json(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict:
    reasons = {400: "Malformed or invalid input", 404: "Not found", 409: "Conflict with the current state",
               413: "Body too large", 415: "Body is not application/json", 503: "Database unavailable"}
    return {str(code): _json("Error", reasons[code]) for code in codes}


JOB_ID_PARAMETER = {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID}
TASKMANAGER_ID_PARAMETER = {"name": "taskmanager_id", "in": "path", "required": True, "schema": TASKMANAGER_ID}
WRITE_ERRORS = (400, 413, 415, 503)

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "stream_processing JobManager", "version": "1.0.0"},
    "paths": {
        "/health": {"get": {"summary": "Overall health from in-memory state", "responses": {
            "200": _json("Health", "Healthy or degraded"), "503": _json("Health", "Unhealthy or shutting down")}}},
        "/health/live": {"get": {"summary": "Liveness (does not depend on the database)",
                                 "responses": {"200": {"description": "Alive"}, "503": {"description": "Dead"}}}},
        "/health/ready": {"get": {"summary": "Readiness (503 during shutdown)",
                                  "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Metrics"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
        "/api/v1/jobs": {
            "get": {"summary": "List jobs", "responses": {"200": {"description": "{\"jobs\": [Job]}"}}},
            "post": {
                "summary": "Submit a streaming job",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobSubmission")}}},
                "responses": {"201": _json("Job", "Submitted"), **_errors(*WRITE_ERRORS)},
            },
        },
        "/api/v1/jobs/{job_id}": {"get": {"summary": "Get a job with its tasks", "parameters": [JOB_ID_PARAMETER],
                                          "responses": {"200": _json("Job", "The job"), **_errors(404)}}},
        "/api/v1/jobs/{job_id}/cancel": {"post": {
            "summary": "Cancel a job; its tasks stop at the next heartbeat", "parameters": [JOB_ID_PARAMETER],
            "responses": {"200": _json("Job", "Cancelled"), **_errors(404, 409, 503)}}},
        "/api/v1/jobs/{job_id}/checkpoints": {
            "get": {"summary": "List checkpoints with piece locations", "parameters": [JOB_ID_PARAMETER],
                    "responses": {"200": {"description": "{\"checkpoints\": [...]}"}, **_errors(404, 503)}},
            "post": {"summary": "Trigger a checkpoint", "parameters": [JOB_ID_PARAMETER],
                     "requestBody": {"required": False,
                                     "content": {"application/json": {"schema": _ref("CheckpointTrigger")}}},
                     "responses": {"202": {"description": "{\"checkpoint_id\": n}"},
                                   **_errors(400, 404, 409, 413, 415, 503)}},
        },
        "/api/v1/taskmanagers": {
            "get": {"summary": "List TaskManagers with slots and tasks", "responses": {"200": {"description": "List"}}},
            "post": {"summary": "Register a TaskManager (idempotent)",
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": _ref("TaskManagerRegistration")}}},
                     "responses": {"201": {"description": "Registered"}, "200": {"description": "Already known"},
                                   **_errors(*WRITE_ERRORS)}},
        },
        "/api/v1/taskmanagers/{taskmanager_id}": {"delete": {
            "summary": "Deregister; its tasks are rescheduled at once", "parameters": [TASKMANAGER_ID_PARAMETER],
            "responses": {"204": {"description": "Deregistered"}, **_errors(404, 503)}}},
        "/api/v1/taskmanagers/{taskmanager_id}/heartbeat": {"post": {
            "summary": "Heartbeat with task status and checkpoint reports; answers with the assignments",
            "parameters": [TASKMANAGER_ID_PARAMETER],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Heartbeat")}}},
            "responses": {"200": {"description": "{assignments, retained_checkpoints, acknowledged_relocations}"},
                          **_errors(400, 404, 413, 415, 503)}}},
    },
    "components": {"schemas": SCHEMAS},
}


@cache
def request_validator(schema_name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": {"schemas": SCHEMAS}}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
