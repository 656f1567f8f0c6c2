"""TaskManager HTTP app: health, readiness, liveness and metrics."""

from __future__ import annotations

import bottle

from stream_processing.config import Config
from stream_processing.http_api import add_probe_routes, install_error_pages
from stream_processing.taskmanager.service import TaskManagerService


def create_app(config: Config, service: TaskManagerService | None = None) -> bottle.Bottle:
    service = service or TaskManagerService(config)
    app = bottle.Bottle()
    app.config["sp.service"] = service
    install_error_pages(app)
    add_probe_routes(
        app, service.registry, service.checks, service.is_live, service.is_ready, lambda: service.shutting_down
    )
    return app
