"""Entry point: `python -m stream_processing` (or `stream-processing`); SP_ROLE selects the service."""

from __future__ import annotations

import logging
import sys

from stream_processing.config import ConfigError, load_config
from stream_processing.json_logging import configure_logging
from stream_processing.serving import serve

log = logging.getLogger("stream_processing")


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(config.role, config.log_level)
    if config.role == "jobmanager":
        from stream_processing.jobmanager.api import create_app
        from stream_processing.jobmanager.service import JobManagerService as Service
    else:
        from stream_processing.taskmanager.api import create_app
        from stream_processing.taskmanager.service import TaskManagerService as Service
    service = Service(config)
    app = create_app(config, service)
    try:
        service.start()
    except Exception as error:  # noqa: BLE001 - report any start-up failure in one clear line
        log.critical("%s failed to start: %s", config.role, error, exc_info=True)
        return 1
    serve(app, config, service)
    return 0


if __name__ == "__main__":
    sys.exit(main())
