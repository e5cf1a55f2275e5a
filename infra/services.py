"""The embedded stack's long-running components: the consumer and the retrainer, in the background.

``python -m demo`` starts them once the first champion is registered, and they keep reading
the stream and retraining until ``python -m infra.emulator down`` (``make down``) stops them,
before the servers they talk to; ``up`` does not start them. Each runs as
:mod:`infra.server_process` runs the servers: its own process group, a pid file in
``TRAFFIC_HOME``, its output appended to ``TRAFFIC_HOME/logs/<name>.log``. A service is ready
once its log says it is past its start (the line it logs on entering its loop): it reached
MLflow and holds its clients; a start that fails raises :class:`~infra.server_process.ServerError`
with the end of its log. They reach AWS and MLflow through the environment they inherit.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from infra import server_process


@dataclass(frozen=True)
class Service:
    name: str
    #: What follows ``python`` on its command line.
    args: tuple[str, ...]
    #: The start of the line it logs on entering its loop (``consumer/__main__.py``, ``training/__main__.py``).
    ready_line: str
    #: How long a SIGTERM may take before SIGKILL: the consumer finishes and checkpoints its batch
    #: and closes its MLflow run; the retrainer registers nothing before a fit ends, so a kill costs nothing.
    stop_timeout: float
    #: OpenMP spinning on every core of a small machine while the model fits starves the consumer.
    single_threaded_on_small_machines: bool = False

    def pid_file(self, settings: Settings) -> Path:
        return settings.home / f"{self.name}.pid"

    def log_path(self, settings: Settings) -> Path:
        return settings.home / "logs" / f"{self.name}.log"


CONSUMER = Service("consumer", ("-m", "consumer"), "consuming stream", stop_timeout=60)
RETRAINER = Service("retrainer", ("-m", "training", "retrain", "--follow", "--poll-seconds", "2"), "retraining every",
                    stop_timeout=10, single_threaded_on_small_machines=True)
SERVICES = (CONSUMER, RETRAINER)


@dataclass(frozen=True)
class Started:
    service: Service
    pid: int
    log_path: Path
    #: Where this start's lines begin in the log (it is appended to across starts).
    log_offset: int
    #: It was running already, and was left as it was.
    already_running: bool


def logged(log_path: Path, since: int, line_start: str) -> bool:
    """Whether a line of the log after byte ``since`` holds ``line_start`` (after the logger's prefix)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return False
    return any(f": {line_start}" in line for line in text.splitlines())


def start(settings: Settings, timeout: float = 180.0) -> list[Started]:
    """Start every service not running yet, each returned once ready (a first start loads MLflow and the model)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    started = []
    for service in SERVICES:
        log_path = service.log_path(settings)
        offset = log_path.stat().st_size if log_path.is_file() else 0
        if (pid := server_process.running(service.pid_file(settings))) is not None:
            started.append(Started(service, pid, log_path, offset, already_running=True))
            continue
        # Pinned, so that a relative TRAFFIC_HOME means the same folder to the service as here.
        env = {**os.environ, "TRAFFIC_HOME": str(settings.home)}
        if service.single_threaded_on_small_machines and (os.cpu_count() or 1) <= 2:
            env["OMP_NUM_THREADS"] = "1"
        process = server_process.start(
            [sys.executable, *service.args], log_path,
            ready=lambda p=log_path, o=offset, line=service.ready_line: logged(p, o, line), timeout=timeout,
            name=f"the {service.name}", env=env, pid_file=service.pid_file(settings), stop_timeout=service.stop_timeout,
        )
        started.append(Started(service, process.pid, log_path, offset, already_running=False))
    return started


def running(settings: Settings) -> dict[str, int | None]:
    """Each service's pid, None for one that is not running."""
    return {service.name: server_process.running(service.pid_file(settings)) for service in SERVICES}


def stop(settings: Settings) -> dict[str, int | None]:
    """Stop every service that runs (SIGTERM, then SIGKILL after its timeout) and remove its pid file;
    each one's pid, None for one that was not running."""
    stopped = {}
    for service in SERVICES:
        stopped[service.name] = server_process.running(service.pid_file(settings))
        server_process.stop_recorded(service.pid_file(settings), service.stop_timeout)
    return stopped
