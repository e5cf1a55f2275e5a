"""The embedded stack: a moto server standing in for AWS and an MLflow server, on 127.0.0.1.

``python -m infra.emulator up`` starts both in the background (pids and logs under
``TRAFFIC_HOME``) and returns once both answer; ``down`` stops them, and before them the
consumer and the retrainer that ``python -m demo`` leaves running (:mod:`infra.services`). Point boto3 at the
emulator with ``AWS_ENDPOINT_URL=http://127.0.0.1:<port>`` and MLflow at its server with
``MLFLOW_TRACKING_URI=http://127.0.0.1:<tracking port>`` (the Makefile does). The MLflow
server keeps its runs and models in ``TRAFFIC_HOME`` (SQLite and a directory of
artifacts), so they outlive the emulator, which keeps everything in memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from core.config import Settings
from infra import server_process, services, tracking_server
from infra.server_process import alive, free_port, wait_for_port  # noqa: F401 (re-exported)

DEFAULT_PORT = 5050
DEFAULT_TRACKING_PORT = 5001


def client_environment(port: int) -> dict[str, str]:
    """What points boto3 at a moto server on 127.0.0.1:``port``: its endpoint, a region and
    placeholder keys (any key works there; these keep real credentials from ever being sent).

    >>> client_environment(5050)["AWS_ENDPOINT_URL"]
    'http://127.0.0.1:5050'
    """
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "embedded",
            "AWS_SECRET_ACCESS_KEY": "embedded", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def start(port: int, log_path: Path, extra_env: dict[str, str] | None = None,
          pid_file: Path | None = None) -> subprocess.Popen:
    """A moto server on 127.0.0.1:``port``, returned once it accepts connections."""
    return server_process.start(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log_path,
        ready=lambda: server_process.port_open(port), name=f"the moto server on port {port}",
        env={**os.environ, **(extra_env or {})}, pid_file=pid_file,
    )


def up(settings: Settings, port: int, tracking_port: int) -> int:
    emulator_pid, tracking_pid = settings.home / "emulator.pid", settings.home / "tracking.pid"
    if (pid := server_process.running(emulator_pid)) is not None:
        print(f"emulator already running (pid {pid})")
    else:
        process = start(port, settings.home / "emulator.log", pid_file=emulator_pid)
        print(f"moto server on http://127.0.0.1:{port} (pid {process.pid}, log {settings.home / 'emulator.log'})")
    if (pid := server_process.running(tracking_pid)) is not None:
        print(f"MLflow server already running (pid {pid})")
    else:
        process, url = tracking_server.start(
            f"sqlite:///{settings.home / 'mlflow.db'}", str(settings.home / "mlartifacts"), tracking_port,
            settings.home / "mlflow-server.log", pid_file=tracking_pid,
        )
        print(f"MLflow server and UI on {url} (pid {process.pid}, log {settings.home / 'mlflow-server.log'})")
    return 0


def down(settings: Settings) -> int:
    # The consumer and the retrainer first: on the way out they still checkpoint and close their MLflow run.
    for name, pid in services.stop(settings).items():
        print(f"{name} not running" if pid is None else f"{name} stopped (pid {pid})")
    for name, pid_file in (("MLflow server", settings.home / "tracking.pid"), ("emulator", settings.home / "emulator.pid")):
        pid = server_process.stop_recorded(pid_file, timeout=10)
        print(f"{name} not running" if pid is None else f"{name} stopped (pid {pid})")
    return 0


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
    except server_process.ServerError as exc:  # a port taken, a server that crashed at start
        print(f"the embedded stack did not start: {exc}\n(`make down` stops whatever did)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
