"""ManagedProcess: readiness, clear failures, and no process left behind."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.processes import (
    LocalServer,
    ManagedProcess,
    ProcessError,
    free_loopback_port,
    port_is_open,
    process_group_exists,
)


def test_free_loopback_port_can_be_bound_on_loopback():
    port = free_loopback_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_is_open(port)
    assert not port_is_open(port)


def test_start_waits_for_the_probe_and_stop_kills_the_whole_group(tmp_path):
    marker = tmp_path / "ready"
    # The shell starts a background child: stop() must end it too, not just the shell.
    script = f"sleep 300 & sleep 0.3; touch {marker}; wait"
    process = ManagedProcess("group", ["sh", "-c", script], log_path=tmp_path / "group.log", ready=marker.exists)

    process.start()
    assert marker.exists()
    assert process.running
    assert process.startup_seconds >= 0.3
    pgid = process.pid

    process.stop()
    assert not process.running
    assert not process_group_exists(pgid)


def test_a_process_that_ignores_the_stop_signal_is_killed(tmp_path):
    marker = tmp_path / "ignoring-sigterm"
    script = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(300)"
    )
    process = ManagedProcess(
        "stubborn",
        [sys.executable, "-c", script, marker],
        log_path=tmp_path / "stubborn.log",
        ready=marker.exists,
        stop_timeout=0.5,
    )
    process.start()
    started = time.monotonic()
    assert process.stop() == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_exit_before_ready_reports_the_exit_code_and_log_tail(tmp_path):
    process = ManagedProcess(
        "crasher",
        ["sh", "-c", "echo 'cannot open config: no such file' >&2; exit 3"],
        log_path=tmp_path / "crasher.log",
        ready=lambda: False,
    )
    with pytest.raises(ProcessError, match=r"(?s)crasher exited with code 3.*cannot open config: no such file"):
        process.start()
    assert not process.running


def test_readiness_timeout_reports_the_last_probe_error_and_stops_the_process(tmp_path):
    log_path = tmp_path / "sleeper.log"

    def probe():
        while "still 2 starting" not in log_path.read_text():  # output, not the command in the header
            time.sleep(0.05)
        raise ConnectionRefusedError("nothing on port 1")

    process = ManagedProcess(
        "sleeper",
        ["sh", "-c", "echo still $((1 + 1)) starting; exec sleep 300"],
        log_path=log_path,
        ready=probe,
        ready_timeout=0.5,
    )
    with pytest.raises(ProcessError, match=r"(?s)not ready after.*nothing on port 1.*still 2 starting"):
        process.start()
    assert not process.running


def test_missing_executable_is_a_clear_error(tmp_path):
    process = ManagedProcess("ghost", [tmp_path / "no-such-binary"], log_path=tmp_path / "ghost.log")
    with pytest.raises(ProcessError, match="ghost: cannot run .*no-such-binary"):
        process.start()


def test_a_server_that_fails_to_start_leaves_no_directory(tmp_path):
    class BrokenServer(LocalServer):
        address = "nowhere"

        def __init__(self):
            super().__init__("spg-broken-")
            with self._removing_workdir_on_error():
                self.process = ManagedProcess(
                    "broken", ["false"], log_path=self.workdir / "broken.log", ready=lambda: False
                )

    server = BrokenServer()
    assert server.workdir.is_dir()
    with pytest.raises(ProcessError, match="broken exited with code 1"), server:
        pass
    assert not server.workdir.exists()


def test_kill_is_a_crash_and_start_runs_it_again(tmp_path):
    marker = tmp_path / "started"
    script = f"echo run > {marker}; exec sleep 300"
    process = ManagedProcess("crashy", ["sh", "-c", script], log_path=tmp_path / "crashy.log", ready=marker.exists)
    process.start()

    assert process.kill() == -signal.SIGKILL
    assert not process.running
    marker.unlink()
    process.start()

    assert process.running
    assert marker.read_text() == "run\n"
    assert process.log_tail().count("starting: sh -c") == 2
    process.stop()


def test_directories_of_dead_sessions_are_removed_by_the_next_server():
    class IdleServer(LocalServer):
        address = "nowhere"

    finished = subprocess.Popen(["true"])
    finished.wait()
    abandoned = IdleServer("spg-idle-")
    (abandoned.workdir / ".owner-pid").write_text(f"{finished.pid}\n")
    alive = IdleServer("spg-idle-")

    fresh = IdleServer("spg-idle-")

    assert not abandoned.workdir.exists()
    assert alive.workdir.exists()
    for server in (abandoned, alive, fresh):
        server.close()
        assert not server.workdir.exists()
