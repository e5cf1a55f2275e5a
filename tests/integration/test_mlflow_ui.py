"""What MLflow's UI reads: the experiment's kind, and the streaming metrics' steps and timestamps."""

from __future__ import annotations

from datetime import datetime

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from adapters import model_registry
from adapters.model_registry import EXPERIMENT_KIND_TAG, MODEL_TRAINING
from consumer.streaming_run import StreamingRun

pytestmark = pytest.mark.integration


def _kind(name: str) -> str | None:
    return mlflow.get_experiment_by_name(name).tags.get(EXPERIMENT_KIND_TAG)


def test_connect_makes_the_experiment_a_model_training_one_whether_new_or_made_before(settings):
    model_registry.connect(settings)
    assert _kind(settings.experiment) == MODEL_TRAINING

    client = MlflowClient()  # one made before the tag existed gets it
    client.delete_experiment_tag(mlflow.get_experiment_by_name(settings.experiment).experiment_id, EXPERIMENT_KIND_TAG)
    assert _kind(settings.experiment) is None
    model_registry.connect(settings)
    assert _kind(settings.experiment) == MODEL_TRAINING

    chosen = settings.replace(experiment="chosen-in-the-ui")  # a kind someone set stays
    client.create_experiment(chosen.experiment, tags={EXPERIMENT_KIND_TAG: "genai_development"})
    model_registry.connect(chosen)
    assert _kind(chosen.experiment) == "genai_development"


def test_the_experiment_page_opens_the_model_training_view(settings):
    model_registry.connect(settings)
    experiment_id = mlflow.get_experiment_by_name(settings.experiment).experiment_id
    assert model_registry.experiment_page(settings) == (
        f"{settings.tracking_uri}/#/experiments/{experiment_id}?workflowType=machine_learning")


def _row(event_time: str, actual: int) -> dict:
    return {"event_time": event_time, "traffic_volume": actual, "batch_prediction": actual + 10.0,
            "online_prediction": actual - 20.0, "served_prediction": actual + 5.0}


def test_streaming_metrics_are_stamped_with_the_event_time_and_stepped_by_hours_since_the_first(settings):
    model_registry.connect(settings)
    run = StreamingRun(settings)
    hours = ["2017-01-01T00:00:00-06:00", "2017-01-01T01:00:00-06:00", "2017-01-01T02:00:00-06:00"]
    run.observe([_row(h, 1000 + i) for i, h in enumerate(hours)], dead_letters=0)
    later = ["2017-01-01T05:00:00-06:00", "2017-01-02T00:00:00-06:00"]  # a gap in the data, then the next batch
    run.observe([_row(h, 2000) for h in later], dead_letters=0)

    history = sorted(MlflowClient().get_metric_history(run.run_id, "online_mae"), key=lambda m: m.timestamp)
    stamps = [int(datetime.fromisoformat(h).timestamp() * 1000) for h in hours + later]
    assert [m.timestamp for m in history] == stamps
    assert [m.step for m in history] == [0, 1, 2, 5, 24]
    assert {"batch_mae", "combined_mae"} <= set(MlflowClient().get_run(run.run_id).data.metrics)
    run.close()
