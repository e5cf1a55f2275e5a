"""Shared fixtures: synthetic data, and a moto server started for the session on a free port."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from core import dataset, synthetic
from core.config import METRICS_COMPONENTS, Settings
from infra import emulator, server_process
from infra.server_process import free_port  # noqa: F401 (re-exported for the tests)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / dataset.FILE_NAME


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    """About 14 months of synthetic hours (2015-01-01 ..), shaped like the UCI file."""
    path = tmp_path_factory.mktemp("data") / "synthetic.csv.gz"
    return synthetic.write_csv(path, start="2015-01-01", hours=24 * 425, seed=7, gap=(24 * 200, 24 * 5))


@pytest.fixture(scope="session")
def synthetic_records(synthetic_csv):
    return dataset.to_records(dataset.read_frame(synthetic_csv), "301")


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not SHARED_DATA.is_file():
        pytest.skip(f"the real dataset is not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """A real moto server process, as the embedded stack runs it."""
    port = free_port()
    process = emulator.start(port, tmp_path_factory.mktemp("moto") / "moto.log")
    yield f"http://127.0.0.1:{port}"
    server_process.stop(process, 10)


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Point boto3 at the moto server with placeholder credentials, whatever the user has set."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return moto_endpoint


@pytest.fixture
def settings(aws_env, tmp_path, monkeypatch, synthetic_csv) -> Settings:
    """Settings with resource names unique to the test, MLflow on SQLite in its tmp folder."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "TRAFFIC_HOME": str(tmp_path / "home"),
        "TRAFFIC_DATA": str(synthetic_csv),
        "TRAFFIC_STREAM_NAME": f"events-{suffix}",
        "TRAFFIC_BUCKET": f"predictions-{suffix}",
        "TRAFFIC_MLFLOW_BUCKET": f"mlflow-{suffix}",
        "TRAFFIC_CHECKPOINT_TABLE": f"checkpoints-{suffix}",
        "TRAFFIC_GLUE_DATABASE": f"traffic_{suffix}",
        "TRAFFIC_RESOURCE_PREFIX": f"ts-{suffix}",
        "TRAFFIC_CHAMPION_REFRESH_SECONDS": "0.5",
        "TRAFFIC_POLL_SECONDS": "0.05",
        # What the tests check does not depend on the model's size, and fitting 2 × 500
        # trees at every training and retraining would dominate the suite's time.
        "TRAFFIC_BATCH_TREES": "100",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        # Tests run several components and workers at once: each serves metrics on a free port.
        **{f"TRAFFIC_{component.upper()}_METRICS_PORT": "0" for component in METRICS_COMPONENTS},
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env()
