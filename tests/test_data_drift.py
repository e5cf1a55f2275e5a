"""The data-drift report on synthetic frames, and Evidently kept out of the consumer, telemetry off."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import batch_model, features, synthetic
from core.dataset import to_records
from core.results import result_row
from monitor import data_drift
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def pairs():
    """A year of synthetic hours, featurized as serving does."""
    records = to_records(synthetic.generate(start="2015-01-01", hours=24 * 365, seed=3), "301")
    return list(features.stream_features(records))


@pytest.fixture(scope="module")
def population(pairs):
    """The report's columns of that year, with a prediction: both sides of a split come from it."""
    frame = data_drift.frame(pairs)
    return frame.assign(prediction=frame["traffic_volume"] * 0.9 + 100)


def split(population: pd.DataFrame, current_rows: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current drawn at random from the same rows: nothing drifts between them."""
    order = np.random.default_rng(seed).permutation(len(population))
    return population.iloc[order[current_rows:]], population.iloc[order[:current_rows]].copy()


def test_a_shifted_column_drifts_and_the_unshifted_ones_do_not(population):
    reference, current = split(population)
    assert data_drift.build(reference, current).drifted_columns == 0

    current["temp_c"] += 12.0
    current["weather"] = "Snow"
    report = data_drift.build(reference, current)
    assert {name for name, c in report.columns.items() if c.drifted} == {"temp_c", "weather"}
    assert report.drifted_columns == 2 and report.drift_share == pytest.approx(2 / len(data_drift.COLUMNS))
    assert report.columns["temp_c"].score > report.columns["temp_c"].threshold > report.columns["clouds_all"].score
    assert "<html" in report.html.lower() and "temp_c" in report.html


def test_missing_values_are_counted_and_an_empty_column_is_left_out_of_the_drift(population):
    reference, current = split(population)
    current.iloc[: len(current) // 4, current.columns.get_loc("temp_c")] = np.nan
    current["prediction"] = np.nan  # this version served none of the window
    report = data_drift.build(reference, current)
    assert report.missing_share["temp_c"] == pytest.approx(0.25)
    assert report.missing_share["prediction"] == 1.0 and report.missing_share["clouds_all"] == 0.0
    assert "prediction" not in report.columns and not report.columns["temp_c"].drifted
    assert report.drift_share == 0.0 and len(report.columns) == len(data_drift.COLUMNS) - 1
    metrics = report.metrics()
    assert metrics["missing_share.prediction"] == 1.0 and "data_drift_score.prediction" not in metrics
    assert {"data_drift_share", "data_drift_columns", "data_drift_score.temp_c", "missing_share.temp_c"} <= set(metrics)
    assert "prediction" in report.table() and "empty on one side" in report.table()


def test_no_rows_on_one_side_is_an_error(population):
    with pytest.raises(ValueError, match="rows on both sides"):
        data_drift.build(population, population.iloc[:0])


def test_frames_hold_the_models_own_predictions_then_what_the_version_served(pairs):
    train_end = datetime(2015, 6, 1)
    history = [r for r, _ in pairs if r.local_time < train_end]
    stream = [r for r, _ in pairs if r.local_time >= train_end][: 24 * 30]
    X, y, _ = features.training_frame(history)
    model = batch_model.build_pipeline(max_iter=5).fit(X, y)
    served = pd.DataFrame([
        result_row(r, batch_prediction=float(i), online_prediction=0.0, served_prediction=0.0,
                   batch_model_version="7" if i % 2 else "6", online_updates=i, shard_id="s", sequence_number=str(i),
                   processed_at="")
        for i, r in enumerate(stream)
    ])
    reference, current = data_drift.frames(history + stream, served, model, "7", train_end, window_days=10)

    assert reference.index.tolist() == [r.event_id for r in history]
    np.testing.assert_allclose(reference["prediction"], model.predict(X))
    # The last ten days before the newest hour, with what version 7 served there (version 6's rows: missing).
    start = stream[-1].local_time - timedelta(days=10) + timedelta(hours=1)
    window = [(i, r) for i, r in enumerate(stream) if r.local_time >= start]
    assert current.index.tolist() == [r.event_id for _, r in window]
    np.testing.assert_array_equal(current["prediction"], [float(i) if i % 2 else np.nan for i, _ in window])
    # Never before train_end, however long the window.
    _, everything = data_drift.frames(history + stream, served, model, "7", train_end, window_days=365)
    assert everything.index.tolist() == [r.event_id for r in stream]


def test_the_holiday_flag_and_clock_are_the_featurizers(pairs):
    frame = data_drift.frame(pairs)
    new_year = frame[frame["local_time"].dt.date == datetime(2015, 1, 1).date()]
    assert (new_year["is_holiday"] == 1).all() and len(new_year) > 20  # marked on the 00:00 row only in the source
    assert set(frame["hour"]) == set(range(24)) and set(frame["weekday"]) == set(range(7))
    assert frame["temp_c"].max() < 60 and frame["weather"].isin(list(features.WEATHER_CODES)).all()


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def test_the_consumer_never_loads_evidently():
    done = _python(
        "import consumer.__main__, sys; assert not any(m.startswith('evidently') for m in sys.modules)\n"
        # Nor does any other module of consumer (the Lambda handler) or core.
        "import importlib, pkgutil, core, consumer\n"
        "for package in (core, consumer):\n"
        "    for module in pkgutil.iter_modules(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('evidently') or m == 'monitor.data_drift')\n"
        "assert not loaded, loaded",
        {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stderr


def test_evidently_telemetry_is_off_once_this_module_is_imported():
    untracked = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "ITERATIVE_DO_NOT_TRACK")}
    done = _python(
        "from evidently.telemetry import event_logger\n"
        "print(event_logger.is_enabled())\n"  # Evidently alone reports usage: the check can tell
        "import monitor.data_drift\n"
        "print(event_logger.is_enabled())",
        untracked,
    )
    assert done.stdout.split() == ["True", "False"], done.stderr
