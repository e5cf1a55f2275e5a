"""The champion's data-drift report: on demand (``python -m monitor drift``) and with each retrain."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from adapters import model_registry
from infra.provision import Provisioner
from monitor import data_drift
from training.jobs import DATA_DRIFT_ERROR_TAG, Retrainer, train_initial
from tests.conftest import ROOT
from tests.integration import helpers

pytestmark = pytest.mark.integration

# Four months of training rows: enough for the report, quick to fit.
TRAIN_START, TRAIN_END = datetime(2015, 6, 1), datetime(2015, 10, 1)


def drift(*args: str) -> subprocess.CompletedProcess:
    """``python -m monitor drift`` as a process of its own, configured like this test."""
    return subprocess.run([sys.executable, "-m", "monitor", "drift", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)


def stream(settings, records) -> None:
    helpers.produce(settings, records)
    helpers.drain(helpers.consumer(settings), len(records))


def drift_runs(settings) -> list:
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    return MlflowClient().search_runs([experiment.experiment_id], filter_string="tags.`traffic.run_type` = 'data_drift'")


def assert_has_report(run_id: str) -> dict[str, float]:
    client = MlflowClient()
    assert [a.path for a in client.list_artifacts(run_id, "data_drift")] == [data_drift.ARTIFACT]
    html = open(client.download_artifacts(run_id, data_drift.ARTIFACT), encoding="utf-8").read()
    assert "<html" in html.lower() and "temp_c" in html
    metrics = client.get_run(run_id).data.metrics
    expected = {"data_drift_share", "data_drift_columns", *(f"missing_share.{c}" for c in data_drift.COLUMNS),
                *(f"data_drift_score.{c}" for c in data_drift.COLUMNS)}
    assert expected <= set(metrics), expected - set(metrics)
    assert 0.0 <= metrics["data_drift_share"] <= 1.0
    return metrics


@pytest.fixture
def trained(settings):
    Provisioner(settings).create(with_iam=False)
    return settings, train_initial(settings, helpers.store(settings), None, TRAIN_END, TRAIN_START)


def test_drift_without_a_champion_says_what_to_do(settings):
    done = drift()
    assert done.returncode == 2, done.stderr
    assert "monitor: no champion version" in done.stderr and "python -m training train" in done.stderr
    assert "Traceback" not in done.stderr


def test_drift_on_demand_logs_the_report_to_a_run_of_its_own(trained, synthetic_records):
    settings, version = trained
    empty = drift()
    assert empty.returncode == 2 and "monitor: no stream rows" in empty.stderr and "Traceback" not in empty.stderr

    records = [r for r in synthetic_records if r.local_time >= TRAIN_END][: 24 * 21]
    stream(settings, records)
    done = drift("--window-days", "7")
    assert done.returncode == 0, done.stderr
    path = settings.home / "reports" / "data_drift.html"
    assert f"report: {path}" in done.stdout and "<html" in path.read_text(encoding="utf-8").lower()
    assert all(f"\n{column} " in done.stdout for column in data_drift.COLUMNS) and "drifted columns:" in done.stdout

    [run] = drift_runs(settings)
    assert run.info.run_name == f"data-drift-{records[-1].local_time:%Y%m%d}"
    assert run.data.tags["model_version"] == version and run.data.params["data_drift.model_version"] == version
    metrics = assert_has_report(run.info.run_id)
    start = records[-1].local_time + timedelta(hours=1) - timedelta(days=7)
    assert metrics["data_drift_current_rows"] == sum(r.local_time >= start for r in records)
    assert metrics["missing_share.prediction"] == 0.0  # the champion served every hour of the window


def test_a_retrain_logs_the_champions_report_with_its_own_run(trained, synthetic_records):
    settings, v1 = trained
    settings = settings.replace(retrain_every_days=30, holdout_days=14)
    records = [r for r in synthetic_records if r.local_time >= TRAIN_END][: 24 * 35]
    stream(settings, records)

    outcome = Retrainer(settings, helpers.store(settings)).step()
    assert outcome is not None and outcome.cutoff == TRAIN_END + timedelta(days=30)
    if outcome.promoted:
        run_id = model_registry.version_run_id(settings, outcome.version)
    else:
        [rejected] = MlflowClient().search_runs(
            [mlflow.get_experiment_by_name(settings.experiment).experiment_id],
            filter_string=f"attributes.run_name = 'retrain-{outcome.cutoff:%Y%m%d}-rejected'")
        run_id = rejected.info.run_id
    run = MlflowClient().get_run(run_id)
    assert DATA_DRIFT_ERROR_TAG not in run.data.tags
    assert run.data.params["data_drift.model_version"] == v1  # the champion's drift, up to the retrain
    metrics = assert_has_report(run_id)
    assert metrics["data_drift_current_rows"] == sum(r.local_time < outcome.cutoff for r in records)
    assert {"holdout_mae", "champion_holdout_mae"} <= set(metrics)  # beside the retrain's own, not instead
    assert not drift_runs(settings)


def test_a_failed_report_is_a_tag_of_the_retrain_not_a_failed_retrain(settings, synthetic_records):
    Provisioner(settings).create(with_iam=False)
    # Trained without writing its rows to the bucket: the stream has nothing to be compared with.
    train_initial(settings, None, None, TRAIN_END, TRAIN_START)
    settings = settings.replace(retrain_every_days=30, holdout_days=14)
    stream(settings, [r for r in synthetic_records if r.local_time >= TRAIN_END][: 24 * 35])
    done = drift()
    assert done.returncode == 2 and "not in s3://" in done.stderr and "--no-history" in done.stderr

    outcome = Retrainer(settings, helpers.store(settings)).step()
    assert outcome is not None
    runs = MlflowClient().search_runs([mlflow.get_experiment_by_name(settings.experiment).experiment_id],
                                      filter_string="tags.kind = 'retrain'")
    [run] = runs
    assert "rows on both sides" in run.data.tags[DATA_DRIFT_ERROR_TAG]
    assert not MlflowClient().list_artifacts(run.info.run_id, "data_drift")
