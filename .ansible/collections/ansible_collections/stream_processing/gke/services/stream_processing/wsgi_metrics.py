"""WSGI middleware recording request counts, latencies and access logs.

It wraps the whole Bottle app, so it also sees the final status of requests that failed with an
uncaught error (Bottle's after_request hooks run before that error becomes a 500).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_QUIET_PREFIXES = ("/health", "/metrics")

access_log = logging.getLogger("stream_processing.access")


class RequestMetricsMiddleware:
    def __init__(self, app, registry: CollectorRegistry):
        self.app = app
        self.requests = Counter(
            "sp_http_requests", "HTTP requests by method, route and status", ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "sp_http_request_duration_seconds", "Time to produce the HTTP response", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = ["500"]

        def recording_start_response(status_line, headers, exc_info=None):
            status[0] = status_line.split(" ", 1)[0]
            # Lets clients (and the benchmark) tell server time from network and queueing time.
            elapsed_ms = (time.perf_counter() - started) * 1000
            return start_response(status_line, [*headers, ("Server-Timing", f"app;dur={elapsed_ms:.3f}")], exc_info)

        try:
            return self.app(environ, recording_start_response)
        finally:
            elapsed = time.perf_counter() - started
            route = environ.get("bottle.route")
            # The rule, not the path, keeps label cardinality bounded.
            route_label = route.rule if route is not None else "unmatched"
            method = environ.get("REQUEST_METHOD", "")
            self.requests.labels(method, route_label, status[0]).inc()
            self.latency.labels(method, route_label).observe(elapsed)
            path = environ.get("PATH_INFO", "")
            level = logging.DEBUG if path.startswith(_QUIET_PREFIXES) and status[0] < "500" else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level, "%s %s %s", method, path, status[0],
                    extra={"http_status": int(status[0]), "duration_ms": round(elapsed * 1000, 3),
                           "remote": environ.get("REMOTE_ADDR")},
                )
