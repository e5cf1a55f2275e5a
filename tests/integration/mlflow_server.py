"""An ``mlflow server`` process on PostgreSQL with S3 artifacts, as docker-compose runs it."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from infra import tracking_server
from tests.conftest import free_port

POSTGRES = os.environ.get("TRAFFIC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    connection = psycopg2.connect(POSTGRES)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@contextmanager
def mlflow_server(s3_endpoint: str, bucket: str, log_dir: Path):
    """Yield the tracking URI of a fresh server backed by a fresh PostgreSQL database."""
    database = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {database}")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the image ships psycopg2.
    backend = POSTGRES.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + f"/{database}"
    try:
        process, url = tracking_server.start(backend, f"s3://{bucket}/artifacts", free_port(),
                                             log_dir / "mlflow-server.log", {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint})
        try:
            yield url
        finally:
            tracking_server.stop(process)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
