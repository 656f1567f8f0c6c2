"""JobManager: REST API, resource manager and checkpoint coordinator."""
