"""Managed subprocesses for test dependencies: start, wait until ready, stop, never leave strays.

Each process runs in its own process group with its output in a log file. `stop()` sends the stop
signal to the leader, waits, then SIGKILLs whatever is left of the group. At interpreter exit every
server still open is closed and every process still running is stopped; when Python dies without
running atexit handlers, the kernel kills each process started from the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1
_OWNER_FILE = ".owner-pid"
_running: set[ManagedProcess] = set()
_open_servers: set[LocalServer] = set()
_running_lock = threading.Lock()


class ProcessError(RuntimeError):
    """A managed process failed to start, died, or did not become ready."""


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def provisioned_path(script: str, *args: str) -> Path:
    """Run a repo script that installs or builds something and prints its path on the last stdout line."""
    command = [REPO_ROOT / script, *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise ProcessError(f"cannot run {command[0]}: {error}") from error
    if result.returncode != 0 or not result.stdout.strip():
        raise ProcessError(
            f"{' '.join(map(str, command))} failed with exit code {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file, or a note that it does not exist."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(text.splitlines()[-lines:])


def process_group_exists(pgid: int) -> bool:
    """True while a process of the group is alive or not yet reaped."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but running as another user (the postgres account)
        pass
    return True


def _wait_until_group_is_gone(pgid: int, timeout: float = 5.0) -> None:
    # Killed children are reparented and reaped by init a moment after SIGKILL.
    deadline = time.monotonic() + timeout
    while process_group_exists(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGKILL it when the forking thread exits.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One long-running child process with a log file and a readiness probe.

    `ready` is called repeatedly after start until it returns a true value; exceptions it raises
    count as "not ready yet" and the last one is reported if the timeout expires.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str | os.PathLike],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        ready: Callable[[], object] | None = None,
        ready_timeout: float = 30.0,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.args = [os.fspath(arg) for arg in args]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.user = user
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.startup_seconds: float | None = None
        self.exit_code: int | None = None
        self._popen: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} running={self.running}>"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and not self._exited()

    def _exited(self) -> bool:
        # WNOWAIT leaves an exited leader unreaped, so its pid (our group id) cannot be reused
        # by an unrelated process before stop() has killed the rest of the group.
        return os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def start(self) -> ManagedProcess:
        """Start the process and wait until the readiness probe passes; raise ProcessError if not."""
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.stop()  # reaps a previous run that exited by itself
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(self.args)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    user=self.user,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
                )
            except OSError as error:
                raise ProcessError(f"{self.name}: cannot run {self.args[0]}: {error}") from error
        with _running_lock:
            _running.add(self)
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        if self.ready is None:
            return
        last_error: BaseException | None = None
        deadline = started + self.ready_timeout
        while True:
            if self._exited():
                exit_code = self.stop()
                raise ProcessError(
                    f"{self.name} exited with code {exit_code} before it was ready; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self.ready():
                    return
            except Exception as error:  # noqa: BLE001 - any probe failure means "not ready yet"
                last_error = error
            if time.monotonic() > deadline:
                reason = f" (last probe error: {last_error!r})" if last_error else ""
                raise ProcessError(
                    f"{self.name} was not ready after {self.ready_timeout:.0f} s{reason}; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> int | None:
        """Stop the process and everything in its process group; return its exit code."""
        popen = self._popen
        if popen is None:
            return self.exit_code
        if not self._exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, self.stop_signal)
            deadline = time.monotonic() + self.stop_timeout
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        # Children of the leader (or a leader that ignored the stop signal) must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        self.exit_code = popen.wait()
        _wait_until_group_is_gone(popen.pid)
        self._popen = None
        with _running_lock:
            _running.discard(self)
        return self.exit_code

    def kill(self) -> int | None:
        """SIGKILL the whole process group at once, as a crash would; return the exit code."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        return self.stop()

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _remove_abandoned_workdirs(prefix: str) -> None:
    # A session killed with SIGKILL cannot clean up; the next one removes what it left behind.
    for workdir in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((workdir / _OWNER_FILE).read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(workdir, ignore_errors=True)
        except (OSError, ValueError):  # owner alive (maybe as another user), or not recorded yet
            continue


class LocalServer:
    """A server made of one ManagedProcess (`self.process`) and a private directory (`self.workdir`).

    Subclasses build their process inside `with self._removing_workdir_on_error():` so that a
    failed set-up leaves nothing behind.
    """

    process: ManagedProcess | None = None

    def __init__(self, workdir_prefix: str, workdir: Path | None = None) -> None:
        self._owns_workdir = workdir is None
        if workdir is None:
            _remove_abandoned_workdirs(workdir_prefix)
            workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
            (workdir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        self.workdir = Path(workdir)
        with _running_lock:
            _open_servers.add(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} running={self.running}>"

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    @contextlib.contextmanager
    def _removing_workdir_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.close()
            raise

    def start(self) -> Self:
        """Start, or start again after `stop()` on the same ports with the same data; returns when ready."""
        self.process.start()
        return self

    def stop(self) -> None:
        """Stop the server, keeping its data for `start()`."""
        if self.process is not None:
            self.process.stop()

    def close(self) -> None:
        """Stop the server and delete its directory (data and log) unless the caller provided it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with _running_lock:
            _open_servers.discard(self)

    def __enter__(self) -> Self:
        with self._removing_workdir_on_error():
            return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@atexit.register
def stop_all() -> None:
    """Close every server and stop every process this interpreter started and has not stopped yet."""
    with _running_lock:
        servers = list(_open_servers)
    for server in servers:
        server.close()
    with _running_lock:
        processes = list(_running)
    for process in processes:
        process.stop()
