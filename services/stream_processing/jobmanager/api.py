"""JobManager REST API: jobs, checkpoints, TaskManagers, health, metrics and the OpenAPI document."""

from __future__ import annotations

import re

import bottle

from stream_processing.config import Config
from stream_processing.http_api import (
    ApiError,
    add_probe_routes,
    handle_api_errors,
    install_error_pages,
    json_response,
    read_json_body,
)
from stream_processing.jobmanager.job_spec import check_job_spec
from stream_processing.jobmanager.job_store import DatabaseUnavailable
from stream_processing.jobmanager.openapi import OPENAPI, request_validator
from stream_processing.jobmanager.resource_manager import Conflict, NotFound
from stream_processing.jobmanager.service import JobManagerService

API_PREFIX = "/api/v1/"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _translate_errors(callback):
    """Domain errors to HTTP: NotFound 404, Conflict 409, DatabaseUnavailable 503 (nothing was written)."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except NotFound as error:
            raise ApiError(404, str(error)) from None
        except Conflict as error:
            raise ApiError(409, str(error)) from None
        except DatabaseUnavailable as error:
            raise ApiError(503, f"{error}; nothing was changed, retry later") from None

    return wrapper


class _ForwardToLeader:
    """Bottle plugin: on a standby, every /api/v1 route answers with the leader's answer.

    Installed first, so it wraps validation and error handling: the leader does all of that.
    """

    api = 2
    name = "forward_to_leader"

    def __init__(self, service: JobManagerService):
        self.service = service

    def apply(self, callback, route):
        if not route.rule.startswith(API_PREFIX):
            return callback

        def wrapper(*args, **kwargs):
            if self.service.leading:
                return callback(*args, **kwargs)
            leader = self.service.election.leader
            request = bottle.request
            return self.service.proxy.forward(request.environ, request.body.read(),
                                              leader.leader_id if leader else None, leader.url if leader else None)

        return wrapper


def create_app(config: Config, service: JobManagerService | None = None) -> bottle.Bottle:
    service = service or JobManagerService(config)
    app = bottle.Bottle()
    app.config["sp.service"] = service
    install_error_pages(app)
    app.install(_ForwardToLeader(service))
    app.install(handle_api_errors)
    app.install(_translate_errors)
    add_probe_routes(
        app, service.registry, service.checks, service.is_live, service.is_ready, lambda: service.shutting_down,
        service.leadership,
    )
    max_bytes = config.max_request_bytes

    def body(schema_name: str):
        return read_json_body(request_validator(schema_name), max_bytes)

    def job_id_checked(job_id: str) -> str:
        if not _UUID.fullmatch(job_id):
            raise ApiError(404, f"job {job_id!r} does not exist (job ids are UUIDs)")
        return job_id

    @app.get("/openapi.json")
    def openapi():
        return json_response(200, OPENAPI)

    @app.post("/api/v1/jobs")
    def submit_job():
        spec = body("JobSubmission")
        check_job_spec(spec)
        with service.lock:
            job = service.resources.submit(spec)
            document = service.job_document(job)
        return json_response(201, document, {"Location": f"/api/v1/jobs/{job.job_id}"})

    @app.get("/api/v1/jobs")
    def list_jobs():
        with service.lock:
            jobs = [service.job_document(job) for job in service.resources.jobs.values()]
        return json_response(200, {"jobs": jobs})

    @app.get("/api/v1/jobs/<job_id>")
    def get_job(job_id):
        with service.lock:
            return json_response(200, service.job_document(service.resources.get_job(job_id_checked(job_id))))

    @app.post("/api/v1/jobs/<job_id>/cancel")
    def cancel_job(job_id):
        with service.lock:
            job = service.resources.cancel(job_id_checked(job_id))
            return json_response(200, service.job_document(job))

    @app.post("/api/v1/jobs/<job_id>/checkpoints")
    def trigger_checkpoint(job_id):
        job_id_checked(job_id)
        if bottle.request.content_length:
            body("CheckpointTrigger")
        with service.lock:
            job = service.resources.get_job(job_id)
            pending = service.coordinator.pending.get(job_id)
            if pending is not None:
                return json_response(409, {"error": f"checkpoint {pending.checkpoint_id} is in progress",
                                           "checkpoint_id": pending.checkpoint_id})
            checkpoint_id = service.coordinator.trigger(job)
        return json_response(202, {"job_id": job_id, "checkpoint_id": checkpoint_id})

    @app.get("/api/v1/jobs/<job_id>/checkpoints")
    def list_checkpoints(job_id):
        with service.lock:
            service.resources.get_job(job_id_checked(job_id))
        with service.store.transaction() as connection:
            checkpoints = service.store.list_checkpoints(connection, job_id)
        return json_response(200, {"job_id": job_id, "checkpoints": checkpoints})

    @app.get("/api/v1/taskmanagers")
    def list_taskmanagers():
        with service.lock:
            return json_response(200, {"taskmanagers": service.resources.taskmanager_list()})

    @app.post("/api/v1/taskmanagers")
    def register_taskmanager():
        registration = body("TaskManagerRegistration")
        with service.lock:
            created = service.resources.register(registration["id"], registration["slots"])
        return json_response(
            201 if created else 200,
            {"taskmanager_id": registration["id"], "heartbeat_interval_seconds": config.heartbeat_interval_seconds},
        )

    @app.delete("/api/v1/taskmanagers/<taskmanager_id>")
    def deregister_taskmanager(taskmanager_id):
        with service.lock:
            service.resources.deregister(taskmanager_id)
        return bottle.HTTPResponse(status=204)

    @app.post("/api/v1/taskmanagers/<taskmanager_id>/heartbeat")
    def heartbeat(taskmanager_id):
        return json_response(200, service.heartbeat(taskmanager_id, body("Heartbeat")))

    return app
