"""End to end on LocalStack (run natively): infra -> train -> produce -> consume -> S3 -> MLflow.

The same topology as docker-compose.yml: LocalStack for Kinesis, S3, IAM and STS; an MLflow
server on PostgreSQL with its artifacts in S3 on LocalStack. LocalStack's DynamoDB needs a
Java download that cannot happen offline, so DynamoDB is the moto server here
(``AWS_ENDPOINT_URL_DYNAMODB``); in compose it is LocalStack's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest
from mlflow.tracking import MlflowClient

from adapters import aws, model_registry
from infra import localstack_native as native
from infra.provision import Provisioner
from infra.server_process import free_port
from monitor.reconcile import reconcile
from tests.conftest import ROOT
from tests.integration import helpers
from tests.integration.mlflow_server import mlflow_server
from training.jobs import train_initial

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

TRAIN_END = datetime(2015, 10, 1)


@pytest.fixture(scope="module")
def localstack_endpoint(tmp_path_factory):
    home = tmp_path_factory.mktemp("localstack")
    port = free_port()
    native.start(port, home)
    yield native.endpoint(port)
    native.stop(home)


@pytest.fixture
def on_localstack(settings, localstack_endpoint, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("TRAFFIC_GLUE_CATALOG", "0")  # as compose sets it: LocalStack's community edition has no Glue
    return settings.replace(glue_catalog=False)


def test_the_whole_system_on_localstack(on_localstack, localstack_endpoint, tmp_path, monkeypatch, synthetic_records):
    settings = on_localstack
    created = Provisioner(settings).create()
    assert Provisioner(settings).create() == created  # idempotent on LocalStack too
    assert set(created["policies"]) == {"producer", "consumer", "trainer", "monitor", "api", "mlflow"}

    with mlflow_server(localstack_endpoint, settings.mlflow_bucket, tmp_path) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        settings = settings.replace(tracking_uri=uri)
        version = train_initial(settings, helpers.store(settings), None, TRAIN_END)
        s3 = aws.client("s3", settings)
        assert any(o["Key"].endswith("MLmodel") for o in s3.list_objects_v2(Bucket=settings.mlflow_bucket)["Contents"])

        records = [r for r in synthetic_records if r.local_time >= TRAIN_END][:1000]
        last = records[-1].local_time.isoformat()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        producer = subprocess.run(
            [sys.executable, "-m", "producer", "--start", TRAIN_END.isoformat(), "--end", last, "--speed", "max",
             "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
        assert producer.returncode == 0, producer.stderr[-2000:]
        assert "records put            1,000" in producer.stdout or "1,000" in producer.stdout

        consumer = subprocess.run([sys.executable, "-m", "consumer", "--idle-exit", "3"], env=env,
                                  capture_output=True, text=True, timeout=600)
        assert consumer.returncode == 0, consumer.stderr[-2000:]

        rows = helpers.store(settings).read_predictions()
        result = reconcile([r.event_id for r in records], rows["event_id"], [])
        assert result.ok and result.predicted == 1000 and not result.duplicates
        assert set(rows["batch_model_version"]) == {version} and rows["batch_prediction"].notna().all()

        run_id = model_registry.latest_streaming_run(settings)
        assert run_id is not None
        metrics = MlflowClient().get_run(run_id).data.metrics
        assert metrics["rows"] == 1000 and "online_mae_total" in metrics and "batch_mae_total" in metrics
