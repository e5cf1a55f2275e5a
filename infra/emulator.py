"""The embedded AWS emulator: a moto server on 127.0.0.1, started and stopped by the project.

``python -m infra.emulator up`` starts it in the background (its pid and log under
``TRAFFIC_HOME``) and returns once it answers; ``down`` stops it. Point boto3 at it with
``AWS_ENDPOINT_URL=http://127.0.0.1:<port>`` (the Makefile does).
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

DEFAULT_PORT = 5050


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


def up(settings: Settings, port: int) -> int:
    pid_file = settings.home / "emulator.pid"
    if pid_file.is_file() and _alive(int(pid_file.read_text())):
        print(f"emulator already running (pid {pid_file.read_text().strip()})")
        return 0
    process = start(port, settings.home / "emulator.log")
    pid_file.write_text(str(process.pid))
    print(f"moto server on http://127.0.0.1:{port} (pid {process.pid}, log {settings.home / 'emulator.log'})")
    return 0


def down(settings: Settings) -> int:
    pid_file = settings.home / "emulator.pid"
    if not pid_file.is_file():
        print("emulator not running")
        return 0
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    pid_file.unlink()
    print(f"emulator stopped (pid {pid})")
    return 0


def _alive(pid: int) -> bool:
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
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    return up(settings, args.port) if args.action == "up" else down(settings)


if __name__ == "__main__":
    sys.exit(main())
