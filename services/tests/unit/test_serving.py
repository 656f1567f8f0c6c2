"""serve(): SIGTERM drains through the service's shutdown and then exits 0, in a real process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

# A minimal service around serve(): shutdown() records that it ran, the app answers one route.
SERVER_SCRIPT = textwrap.dedent(
    """
    import logging, sys, types
    import bottle
    from prometheus_client import CollectorRegistry
    from stream_processing.serving import serve

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    service = types.SimpleNamespace(registry=CollectorRegistry(), shutting_down=False)
    service.shutdown = lambda: print("shutdown ran", flush=True)
    app = bottle.Bottle()
    app.route("/health", callback=lambda: "ok")
    config = types.SimpleNamespace(http_host="127.0.0.1", http_port=0, http_threads=2,
                                   max_request_bytes=1024, role="test")
    serve(app, config, service)
    print("exited the loop", flush=True)
    """
)


def start_server(ignore_sigint: bool) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # What a shell script's background job (`service &`) gets: SIGINT ignored.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )
    for line in process.stdout:
        if line.startswith("listening"):
            return process
    process.kill()
    raise AssertionError(f"the server never listened; exit code {process.wait()}")


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["sigint-default", "sigint-ignored"])
def test_sigterm_runs_the_shutdown_and_exits_cleanly(ignore_sigint):
    process = start_server(ignore_sigint)
    process.send_signal(signal.SIGTERM)
    try:
        output = process.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
        pytest.fail(f"still running 15 s after SIGTERM; output:\n{output}")
    assert process.returncode == 0, output
    assert "shutdown ran" in output
    assert "exited the loop" in output
