"""The compose topology natively: MLflow server on PostgreSQL with artifacts in S3 (moto)."""

from __future__ import annotations

from datetime import datetime

import mlflow
import pytest

from adapters import aws, model_registry
from infra.provision import Provisioner
from tests.integration import helpers
from tests.integration.mlflow_server import mlflow_server
from training.jobs import train_initial

pytestmark = pytest.mark.integration


def test_training_registers_through_the_server_and_the_consumer_loads_the_champion(
    settings, moto_endpoint, tmp_path, monkeypatch, synthetic_records
):
    Provisioner(settings).create(with_iam=False)
    with mlflow_server(moto_endpoint, settings.mlflow_bucket, tmp_path) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        settings = settings.replace(tracking_uri=uri)
        version = train_initial(settings, helpers.store(settings), None, datetime(2015, 10, 1))

        # The model's files went to the artifact bucket through the server, not to local disk.
        s3 = aws.client("s3", settings)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.mlflow_bucket).get("Contents", [])]
        assert any(k.endswith("MLmodel") for k in keys)
        assert mlflow.get_tracking_uri() == uri

        c = helpers.consumer(settings)
        records = [r for r in synthetic_records if r.local_time >= datetime(2015, 10, 1)][:200]
        helpers.produce(settings, records)
        helpers.drain(c, 200)
        assert c.champion.version == version
        rows = helpers.store(settings).read_predictions()
        assert rows["batch_prediction"].notna().all() and set(rows["batch_model_version"]) == {version}
        assert model_registry.champion_version(settings)[0] == version
