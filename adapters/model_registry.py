"""MLflow as experiment tracker and model registry.

The batch model is registered as ``traffic-volume-batch``; the version serving
predictions is the one holding the alias ``champion``. :class:`Champion` follows that
alias: it re-reads it at most every ``refresh_seconds`` and swaps the model in without a
restart. If MLflow cannot be reached, the model already loaded keeps serving and the
failure is logged, so a tracking-server outage never stops the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from core.config import Settings
from core.trees import predictor

log = logging.getLogger(__name__)

CHAMPION = "champion"
#: Types in the batch pipeline that skops (MLflow's default, safe serialization) does not
#: trust by default; we trust them because only our own training jobs write these models.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "sklearn.utils._bunch.Bunch",  # VotingRegressor.named_estimators_
    "core.batch_model.LastHourResidual",
]


#: The experiment tag in which MLflow records an experiment's kind, and the kind of a model-training
#: experiment (runs, metric charts, models) as against ``genai_development`` (traces, evaluations).
#: MLflow 3.17's UI takes the view from its sidebar switch (GenAI for a new user) or a link's
#: ``workflowType`` (:func:`experiment_page`): its build reads this tag only with that switch
#: turned off. The tag still records the kind, as MLflow does for its own demo experiment.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking/registry server and the project's experiment, a
    model-training one (:data:`EXPERIMENT_KIND_TAG`; an experiment made before the tag gets it)."""
    if settings.tracking_uri.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(settings.experiment) is None:
        artifact_location = None
        if settings.tracking_uri.startswith("sqlite:///"):
            artifact_location = (settings.home / "mlartifacts").as_uri()
        try:
            mlflow.create_experiment(settings.experiment, artifact_location=artifact_location,
                                     tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})
        except MlflowException:
            pass  # created meanwhile by another component
    experiment = mlflow.set_experiment(settings.experiment)
    client = MlflowClient()
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # a kind chosen in the UI stays
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    return client


def experiment_page(settings: Settings) -> str:
    """The experiment's page in the MLflow UI (a tracking server's URL), in the model-training view:
    MLflow 3.17's UI takes the view from the link's ``workflowType`` and keeps it across the
    experiment's tabs, where a new user would otherwise land in the GenAI view."""
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    return f"{settings.tracking_uri.rstrip('/')}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning"


def log_and_register(
    settings: Settings,
    model,
    sample: pd.DataFrame,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    run_name: str,
) -> str:
    """Log a fitted pipeline in its own run and register it; returns the new version."""
    with mlflow.start_run(run_name=run_name, tags=dict(tags)):
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        signature = infer_signature(sample, np.asarray(model.predict(sample), dtype="float64"))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=sample.head(5),
            registered_model_name=settings.model_name,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    return version


def version_run_id(settings: Settings, version: str) -> str:
    """The id of the run that logged a registered version (to log more to it later)."""
    return MlflowClient().get_model_version(settings.model_name, version).run_id


def tag_run(run_id: str, key: str, value: str) -> None:
    MlflowClient().set_tag(run_id, key, value)


def promote(settings: Settings, version: str) -> None:
    MlflowClient().set_registered_model_alias(settings.model_name, CHAMPION, version)
    log.info("model %s version %s is now %s", settings.model_name, version, CHAMPION)


def champion_version(settings: Settings) -> tuple[str, dict[str, str]] | None:
    """The champion's version and tags, or ``None`` when there is no champion yet."""
    try:
        mv = MlflowClient().get_model_version_by_alias(settings.model_name, CHAMPION)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise
    return str(mv.version), dict(mv.tags)


def load_version(settings: Settings, version: str):
    return mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")


class Champion:
    """The serving batch model, following the registry's ``champion`` alias."""

    def __init__(self, settings: Settings, refresh_seconds: float | None = None, clock=time.monotonic) -> None:
        self.settings = settings
        self.refresh_seconds = settings.champion_refresh_seconds if refresh_seconds is None else refresh_seconds
        self.clock = clock
        self.version: str | None = None
        self.model = None
        self._predict = None
        self._checked_at: float | None = None

    def refresh(self, force: bool = False) -> bool:
        """Load a new champion if the alias moved; True when the model changed."""
        now = self.clock()
        if not force and self._checked_at is not None and now - self._checked_at < self.refresh_seconds:
            return False
        self._checked_at = now
        try:
            found = champion_version(self.settings)
            if found is None or found[0] == self.version:
                return False
            model = load_version(self.settings, found[0])
        except Exception as exc:  # any registry/artifact failure: keep serving what we have
            log.warning("could not refresh the champion (keeping version %s): %s", self.version, exc)
            return False
        log.info("serving batch model %s version %s (was %s)", self.settings.model_name, found[0], self.version)
        self.use(found[0], model)
        return True

    def use(self, version: str, model) -> None:
        """Serve ``model`` as ``version`` from now on."""
        self.version, self.model, self._predict = version, model, predictor(model)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        # A champion fitted before features were added keeps serving through an upgrade: it
        # gets the columns it was fitted on, by name, whatever else the frame holds.
        names = getattr(self.model, "feature_names_in_", None)
        return self._predict(frame if names is None else frame[list(names)])


def latest_streaming_run(settings: Settings) -> str | None:
    """The most recent streaming run of the consumer (see :mod:`consumer.streaming_run`)."""
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    if experiment is None:
        return None
    runs = MlflowClient().search_runs(
        [experiment.experiment_id], filter_string="tags.`traffic.run_type` = 'streaming'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    return runs[0].info.run_id if runs else None


def log_comparison(run_id: str, scores: Mapping[str, object], table: str, chart_path) -> None:
    client = MlflowClient()
    metrics = {}
    for name, s in scores.items():
        metrics.update({f"replay_{name}_{k}": v for k, v in s.as_metrics().items() if v == v})
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    client.log_text(run_id, table, "comparison/table.txt")
    client.log_artifact(run_id, str(chart_path), "comparison")


def log_run(run_name: str, params: Mapping[str, object], metrics: Mapping[str, float], tags: Mapping[str, str]) -> str:
    with mlflow.start_run(run_name=run_name, tags=dict(tags)) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
    return run.info.run_id
