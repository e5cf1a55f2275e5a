"""An ``mlflow server`` process: the tracking server and model registry every component reaches over HTTP.

docker-compose runs one on PostgreSQL with artifacts in S3; the embedded stack
(``python -m infra.emulator up``) runs one beside the moto server, on SQLite with artifacts
in a local directory, both under ``TRAFFIC_HOME`` so they survive a restart together. The
consumer then holds no database client of its own: MLflow's SQL store (SQLAlchemy, alembic)
costs 40 MB in every process that opens it, measured by ``bench/throughput``.

>>> command("sqlite:////tmp/mlflow.db", "/tmp/artifacts", port=5001)[4:8]
['--backend-store-uri', 'sqlite:////tmp/mlflow.db', '--artifacts-destination', '/tmp/artifacts']
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from infra import server_process


#: MLflow 3's server also runs a job queue for its GenAI features (evaluation jobs, periodic
#: trace tasks), which this project does not use: a job runner and seven huey consumers
#: beside the server, 10 processes and 2.4 GB of RSS summed over them against 2 and 0.5 GB without
#: them (measured on a server on SQLite). The environment can still turn it on.
SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def command(backend_store_uri: str, artifacts_destination: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The server's command line; artifacts are proxied (``--serve-artifacts``), so clients
    need no credentials or endpoint for where they are stored."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination, "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", "1",
    ]


def healthy(url: str) -> bool:
    return server_process.http_ok(f"{url}/health")


def start(
    backend_store_uri: str,
    artifacts_destination: str,
    port: int,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120,
    pid_file: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start a server in its own process group and return it with its URL once ``/health`` answers.

    Raises :class:`~infra.server_process.ServerError` with the end of its log if it exits or
    does not answer in time (a first start creates the SQLite schema, which takes a few seconds).
    """
    url = f"http://127.0.0.1:{port}"
    process = server_process.start(
        command(backend_store_uri, artifacts_destination, port), log_path, ready=lambda: healthy(url),
        timeout=timeout, name=f"the MLflow server on port {port}",
        env={**SERVER_ENVIRONMENT, **os.environ, **(extra_env or {})}, pid_file=pid_file,
    )
    return process, url


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started by :func:`start` and the workers it spawned."""
    server_process.stop(process, timeout)
