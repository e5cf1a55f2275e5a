"""A local server process: started in its own process group with a log, awaited until ready, stopped.

The embedded stack (the moto and MLflow servers), native LocalStack and the test fixtures
(moto, kinesis-mock) all run their servers through :func:`start` and :func:`stop`.
:func:`start` returns the ``Popen`` once the server is ready, or stops it and raises
:class:`ServerError` with the end of what it logged; a ``pid_file`` lets another process
find it (:func:`running`) and stop it (:func:`stop_recorded`), as ``make up`` / ``make down`` do.
Standard library only: ``localstack/native.py`` runs under any ``python3``.

>>> import sys, tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> port = free_port()
>>> server = start([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(folder), str(port)],
...                folder / "http.log", ready=lambda: http_ok(f"http://127.0.0.1:{port}/"), name="http.server")
>>> alive(server.pid), port_open(port)
(True, True)
>>> stop(server), alive(server.pid), port_open(port)
(True, False, False)
>>> start([sys.executable, "-c", "print('no port for me'); raise SystemExit(3)"], folder / "bad.log",
...       ready=lambda: False, name="bad")  # doctest: +ELLIPSIS
Traceback (most recent call last):
infra.server_process.ServerError: bad exited with code 3 while starting (log .../bad.log):
no port for me
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

#: A ready check: True once the server serves; anything else means not yet, and a string says
#: what is missing (it ends up in the error if the deadline passes).
Ready = Callable[[], "bool | str"]

#: How long :func:`stop` waits after the SIGKILL before it gives up.
KILL_WAIT = 10.0


class ServerError(RuntimeError):
    """A server exited while starting, or could not be stopped; the message says which, with its log's tail."""


class NotReady(ServerError, TimeoutError):
    """A server (or a port) was not ready by the deadline."""


# ------------------------------------------------------------------------------------------ ready checks


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def wait_ready(ready: Ready, timeout: float, process: subprocess.Popen | None = None, what: str = "the server",
               interval: float = 0.1) -> None:
    """Poll ``ready`` until it returns True: :class:`NotReady` after ``timeout`` seconds,
    :class:`ServerError` if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ServerError(f"{what} exited with code {process.returncode} while starting")
        state = ready()
        if state is True:
            return
        if time.monotonic() >= deadline:
            missing = f": {state}" if isinstance(state, str) and state else ""
            raise NotReady(f"{what} was not ready within {timeout:.0f} s{missing}")
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Return once something answers on ``host:port`` (a ``TimeoutError`` after ``timeout`` seconds)."""
    wait_ready(lambda: port_open(port, host), timeout, process, what=f"the server on {host}:{port}")


# ----------------------------------------------------------------------------------------- start / stop


def start(command: Sequence[str], log_path: Path, *, ready: Ready, timeout: float = 30.0, name: str = "the server",
          env: Mapping[str, str] | None = None, cwd: Path | None = None, pid_file: Path | None = None,
          stop_timeout: float = 30.0) -> subprocess.Popen:
    """Run ``command`` in a process group of its own, its output appended to ``log_path``, and
    return it once ``ready()`` is True.

    ``env`` is its whole environment (default this process's). ``pid_file`` is written as soon
    as it runs. If it exits, is not ready within ``timeout`` seconds, or the wait is interrupted,
    it is stopped, ``pid_file`` removed, and :class:`ServerError` (:class:`NotReady` for the
    deadline) raised with the lines it logged.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=None if env is None else dict(env), cwd=cwd, start_new_session=True)
    if pid_file is not None:
        pid_file.write_text(f"{process.pid}\n")
    try:
        wait_ready(ready, timeout, process, what=name)
    except BaseException as error:
        stop(process, stop_timeout)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        if isinstance(error, ServerError):
            raise type(error)(f"{error} (log {log_path}):\n{log_tail(log_path, since=offset)}") from None
        raise
    return process


def stop(server: subprocess.Popen | int | None, timeout: float = 30.0, *,
         also: Callable[[], Iterable[int]] | None = None) -> bool:
    """Stop a server and every process of its group: SIGTERM, then SIGKILL to whatever is left after
    ``timeout`` seconds. True if anything was running.

    ``server`` is what :func:`start` returned, or the pid of a group leader (from a pid file), or
    None when only ``also()`` is left. ``also()`` names more of its processes, ones that left the
    group; they are signalled one by one and asked for again before the SIGKILL.
    :class:`ServerError` if any outlives the SIGKILL.
    """
    pid = server.pid if isinstance(server, subprocess.Popen) else server
    others = set(also()) - {pid} if also else set()

    def left() -> set[int]:
        if isinstance(server, subprocess.Popen):
            server.poll()  # reaps it once it exits
        return (group(pid) if pid is not None else set()) | {p for p in others if alive(p)}

    remaining = left()
    if not remaining:
        return False
    for sig, seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_WAIT)):
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        for other in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(other, sig)
        deadline = time.monotonic() + seconds
        while (remaining := left()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not remaining:
            return True
        if also:  # any it started meanwhile
            others |= set(also()) - {pid}
    raise ServerError(f"could not stop processes {sorted(remaining)}")


# ------------------------------------------------------------------------------------ processes, pid files


def alive(pid: int) -> bool:
    """Whether a process with this pid runs (one we may not signal counts; a zombie does not, and one
    of ours is reaped on the way)."""
    fields = _stat(pid)
    if fields and fields[0] == "Z":
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group(pgid: int) -> set[int]:
    """The live processes of process group ``pgid`` (where there is no ``/proc``: its leader, if alive)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return {pgid} if alive(pgid) else set()
    members = set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def read_pid(pid_file: Path) -> int | None:
    """The pid a pid file holds, None without one (or with no number in it)."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process still runs and leads its process group, as :func:`start` makes it."""
    pid = read_pid(pid_file)
    if pid is None or not alive(pid):
        return None
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            return pid
    return None


def stop_recorded(pid_file: Path, timeout: float = 30.0) -> int | None:
    """Stop the server ``pid_file`` names (if it still runs) and remove the file; its pid, None without one."""
    pid = read_pid(pid_file)
    if pid is not None:
        stop(pid, timeout)
    pid_file.unlink(missing_ok=True)
    return pid


def log_tail(log_path: Path, lines: int = 40, since: int = 0) -> str:
    """The last ``lines`` lines of a log, from byte ``since`` on."""
    try:
        with open(log_path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return f"(no log at {log_path})"
    return "\n".join(text.splitlines()[-lines:])


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...), None if unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
