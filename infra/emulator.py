"""The embedded stack: a moto server standing in for AWS and an MLflow server, on 127.0.0.1.

``python -m infra.emulator up`` starts both in the background (pids and logs under
``TRAFFIC_HOME``) and returns once both answer; ``down`` stops them. Point boto3 at the
emulator with ``AWS_ENDPOINT_URL=http://127.0.0.1:<port>`` and MLflow at its server with
``MLFLOW_TRACKING_URI=http://127.0.0.1:<tracking port>`` (the Makefile does). The MLflow
server keeps its runs and models in ``TRAFFIC_HOME`` (SQLite and a directory of
artifacts), so they outlive the emulator, which keeps everything in memory.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.config import Settings
from infra import tracking_server

DEFAULT_PORT = 5050
DEFAULT_TRACKING_PORT = 5001


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on {host}:{port} exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f} s")


def start(port: int, log_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {})}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    wait_for_port("127.0.0.1", port, 30, process)
    return process


def up(settings: Settings, port: int, tracking_port: int) -> int:
    emulator_pid, tracking_pid = settings.home / "emulator.pid", settings.home / "tracking.pid"
    if _running(emulator_pid):
        print(f"emulator already running (pid {emulator_pid.read_text().strip()})")
    else:
        process = start(port, settings.home / "emulator.log")
        emulator_pid.write_text(str(process.pid))
        print(f"moto server on http://127.0.0.1:{port} (pid {process.pid}, log {settings.home / 'emulator.log'})")
    if _running(tracking_pid):
        print(f"MLflow server already running (pid {tracking_pid.read_text().strip()})")
    else:
        process, url = tracking_server.start(
            f"sqlite:///{settings.home / 'mlflow.db'}", str(settings.home / "mlartifacts"), tracking_port,
            settings.home / "mlflow-server.log",
        )
        tracking_pid.write_text(str(process.pid))
        print(f"MLflow server and UI on {url} (pid {process.pid}, log {settings.home / 'mlflow-server.log'})")
    return 0


def down(settings: Settings) -> int:
    for name, pid_file in (("MLflow server", settings.home / "tracking.pid"), ("emulator", settings.home / "emulator.pid")):
        if not pid_file.is_file():
            print(f"{name} not running")
            continue
        pid = int(pid_file.read_text())
        if alive(pid):
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        pid_file.unlink()
        print(f"{name} stopped (pid {pid})")
    return 0


def _running(pid_file: Path) -> bool:
    return pid_file.is_file() and alive(int(pid_file.read_text()))


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the moto server's port")
    parser.add_argument("--tracking-port", type=int, default=DEFAULT_TRACKING_PORT, help="the MLflow server's port")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    if args.action == "down":
        return down(settings)
    try:
        return up(settings, args.port, args.tracking_port)
    except (RuntimeError, TimeoutError) as exc:  # a port taken, a server that crashed at start
        print(f"the embedded stack did not start: {exc}\n(`make down` stops whatever did)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
