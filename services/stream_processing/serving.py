"""Serves an app with waitress and shuts down gracefully on SIGTERM.

waitress has no graceful stop of its own: on SIGTERM readiness turns 503 at once, the service's
shutdown (final checkpoint, stopping tasks) runs in a thread while waitress keeps answering
probes and in-flight requests, then the server loop is interrupted and the process exits.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading

import waitress

from stream_processing.wsgi_metrics import RequestMetricsMiddleware

log = logging.getLogger(__name__)


def serve(app, config, service) -> None:
    wsgi_app = RequestMetricsMiddleware(app, service.registry)
    server = waitress.create_server(
        wsgi_app,
        host=config.http_host,
        port=config.http_port,
        threads=config.http_threads,
        max_request_body_size=config.max_request_bytes,
        ident="stream-processing",
        clear_untrusted_proxy_headers=True,
    )
    stopping = threading.Event()

    def stop_gracefully() -> None:
        try:
            service.shutdown()
        except Exception:  # noqa: BLE001 - exit anyway; the orchestrator will restart us
            log.exception("graceful shutdown failed")
        _thread.interrupt_main()

    def on_sigterm(signum, _frame) -> None:
        if stopping.is_set():
            return
        stopping.set()
        service.shutting_down = True
        log.info("received %s; draining", signal.Signals(signum).name)
        threading.Thread(target=stop_gracefully, name="shutdown", daemon=True).start()

    # interrupt_main() raises KeyboardInterrupt in the loop only while SIGINT has Python's handler; a
    # process started with SIGINT ignored (a background job of a shell script) would never stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    log.info("listening", extra={"host": config.http_host, "port": server.effective_port, "role": config.role})
    server.run()  # returns once interrupt_main() raises KeyboardInterrupt in the loop
    server.close()
