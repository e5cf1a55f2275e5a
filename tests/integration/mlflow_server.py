"""An ``mlflow server`` process on PostgreSQL with S3 artifacts, as docker-compose runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from tests.conftest import free_port
from tests.integration.helpers import wait_until

POSTGRES = os.environ.get("TRAFFIC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    connection = psycopg2.connect(POSTGRES)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def mlflow_server(s3_endpoint: str, bucket: str, log_dir: Path):
    """Yield the tracking URI of a fresh server backed by a fresh PostgreSQL database."""
    database = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {database}")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the image ships psycopg2.
    backend = POSTGRES.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + f"/{database}"
    port = free_port()
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    log = open(log_dir / "mlflow-server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", f"s3://{bucket}/artifacts", "--serve-artifacts",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _healthy(url), 120, 0.25, "the MLflow server to answer")
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {(log_dir / 'mlflow-server.log').read_text()[-2000:]}")
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)
        _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
