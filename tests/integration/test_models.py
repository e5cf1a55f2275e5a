"""Training -> MLflow registry -> the consumer switching champions; periodic retraining."""

from __future__ import annotations

from datetime import datetime, timedelta

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from adapters import model_registry
from consumer.streaming_run import StreamingRun
from core import batch_model, dataset, synthetic
from infra.provision import Provisioner
from training import fit as fitting
from training.jobs import Retrainer, train_initial
from tests.integration import helpers

pytestmark = pytest.mark.integration

TRAIN_END = datetime(2015, 10, 1)


@pytest.fixture
def trained(settings):
    Provisioner(settings).create(with_iam=False)
    version = train_initial(settings, helpers.store(settings), None, TRAIN_END)
    return settings, version


def test_initial_training_registers_a_champion_with_signature_and_metrics(trained):
    settings, version = trained
    assert model_registry.champion_version(settings)[0] == version
    mv = MlflowClient().get_model_version(settings.model_name, version)
    run = MlflowClient().get_run(mv.run_id)
    assert {"holdout_mae", "holdout_rmse", "holdout_r2"} <= set(run.data.metrics)
    assert run.data.params["train_end"] == TRAIN_END.isoformat()
    # The configured size (the tests' own, smaller than the product's), at the learning rate that goes with it.
    assert run.data.params["model.max_iter"] == str(settings.batch_trees)
    assert float(run.data.params["model.learning_rate"]) == pytest.approx(75.0 / settings.batch_trees)
    info = mlflow.models.get_model_info(f"models:/{settings.model_name}/{version}")
    assert info.signature is not None and "lag_24h" in info.signature.inputs.input_names()
    assert helpers.store(settings).read_seed() is not None  # the online model starts warm


def test_every_registered_version_logs_its_shap_summary_and_mean_contributions(trained):
    from core.features import FEATURE_COLUMNS
    from training.explanations import PLOT

    settings, first = trained
    second = train_initial(settings, None, None, TRAIN_END - timedelta(days=30))
    client = MlflowClient()
    for version in (first, second):
        run_id = client.get_model_version(settings.model_name, version).run_id
        metrics = client.get_run(run_id).data.metrics
        means = {name: metrics[f"shap_mean_abs_{name}"] for name in FEATURE_COLUMNS}
        assert all(value >= 0 for value in means.values()) and max(means, key=means.get) in ("lag_1h", "hour", "lag_168h",
                                                                                           "lag_2h", "hour_of_week")
        (plot,) = [a for a in client.list_artifacts(run_id, "explanations")]
        assert plot.path == PLOT and plot.file_size > 10_000


def test_consumer_switches_to_a_new_champion_without_restart(trained, synthetic_records):
    settings, v1 = trained
    records = [r for r in synthetic_records if r.local_time >= TRAIN_END]
    c = helpers.consumer(settings, streaming_run=StreamingRun(settings))
    helpers.produce(settings, records[:300])
    helpers.drain(c, 300)
    assert c.champion.version == v1

    # A better model appears: register it and move the alias, as retraining does.
    data = fitting.Dataset.from_records(records[:300])
    model = fitting.fit(fitting.Dataset.from_records(synthetic_records), records[300].local_time, 3,
                        **batch_model.sized(settings.batch_trees)).model
    v2 = model_registry.log_and_register(settings, model, data.X.head(50), {}, {}, {"kind": "test"}, "test-v2")
    model_registry.promote(settings, v2)

    helpers.produce(settings, records[300:600])
    helpers.drain(c, 600)
    helpers.wait_until(lambda: c.champion.version == v2, 30, message="the consumer to load the new champion")
    helpers.produce(settings, records[600:700])
    helpers.drain(c, 700)
    rows = helpers.store(settings).read_predictions()
    assert set(rows["batch_model_version"]) == {v1, v2}
    assert rows["batch_model_version"].iloc[-1] == v2
    assert rows["batch_prediction"].notna().all()

    c.streaming_run.close()
    run = MlflowClient().get_run(c.streaming_run.run_id)
    assert {"batch_mae", "online_mae", "batch_mae_total", "online_mae_total"} <= set(run.data.metrics)
    history = MlflowClient().get_metric_history(run.info.run_id, "online_mae")
    assert len(history) == 700 and history[0].step < history[-1].step  # stepped by event hour


def test_retraining_promotes_only_a_model_not_worse_than_the_champion(trained, synthetic_records):
    settings, v1 = trained
    settings = settings.replace(retrain_every_days=30, holdout_days=14)
    records = [r for r in synthetic_records if r.local_time >= TRAIN_END][:24 * 70]
    helpers.produce(settings, records)
    c = helpers.consumer(settings)
    helpers.drain(c, len(records))

    retrainer = Retrainer(settings, helpers.store(settings))
    outcome = retrainer.step()
    assert outcome is not None and outcome.cutoff == datetime(2015, 11, 30)  # two whole 30-day spans seen: the latest boundary
    assert outcome.promoted == (outcome.candidate_mae <= outcome.champion_mae * (1 + settings.promotion_tolerance))
    champion = model_registry.champion_version(settings)[0]
    assert champion == (outcome.version if outcome.promoted else v1)
    assert retrainer.step() is None  # nothing new: not due again


def test_a_drift_in_the_batch_models_errors_brings_the_retrain_forward(trained, tmp_path):
    """A lane closure 6 days after the champion's cutoff: the consumer detects it in the batch
    model's errors and writes the event; the retrainer retrains a settling day later, long
    before the 30-day cadence, scored on the hours since the champion's cutoff only."""
    settings, v1 = trained
    settings = settings.replace(retrain_every_days=30, holdout_days=14, drift_retrain=True, drift_settle_hours=24,
                                drift_min_spacing_days=2)
    # A Wednesday 08:00, before this series' first false alarm (a detection restarts the test
    # for MIN_INSTANCES hours, which would delay the closure's).
    closure = TRAIN_END + timedelta(days=6, hours=8)
    frame = synthetic.generate(start="2015-01-01", hours=24 * 425, seed=7, gap=(24 * 200, 24 * 5),
                               level_shift=(closure.isoformat(), 0.6))
    records = [r for r in dataset.to_records(frame, "301") if r.local_time >= TRAIN_END][:24 * 12]
    helpers.produce(settings, records)
    c = helpers.consumer(settings)
    helpers.drain(c, len(records))
    detected = sorted(datetime.fromisoformat(e["event_time"]).replace(tzinfo=None)
                      for e in helpers.store(settings).read_drift_events() if e["model"] == "batch")
    assert any(closure <= t <= closure + timedelta(hours=24) for t in detected), detected

    retrainer = Retrainer(settings, helpers.store(settings))
    outcome = retrainer.step()
    assert outcome is not None and outcome.trigger == "drift"
    assert outcome.cutoff == max(detected[0] + timedelta(hours=24), TRAIN_END + timedelta(days=2))
    run_tags = MlflowClient().search_runs([MlflowClient().get_experiment_by_name(settings.experiment).experiment_id],
                                          "tags.kind = 'retrain'")[0].data.tags
    assert run_tags["trigger"] == "drift"
