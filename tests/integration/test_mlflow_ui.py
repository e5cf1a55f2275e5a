"""What MLflow's UI reads: the experiment's kind."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from adapters import model_registry
from adapters.model_registry import EXPERIMENT_KIND_TAG, MODEL_TRAINING

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
