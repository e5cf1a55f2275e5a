"""Predictions on demand (core.forecast), their explanations (core.explanation), and the API's batching, without servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pytest

from core import batch_model, dataset, forecast, synthetic
from core.explanation import TreeContributions
from core.features import FEATURE_COLUMNS, to_frame, training_frame
from core.processing import RawRecord, process_batch
from core.schema import DecodeError, encode
from core.state_codec import dump_states
from tests.conftest import ROOT


class Model:
    """A fitted batch model as the consumer's champion is seen: a version and predict."""

    def __init__(self, model, version="7"):
        self.model, self.version = model, version

    def predict(self, frame):
        return self.model.predict(frame)


@pytest.fixture(scope="module")
def records():
    return dataset.to_records(synthetic.generate(start="2015-03-01", hours=24 * 40, seed=3, missing_rate=0.05), "301")


@pytest.fixture(scope="module")
def model(records):
    X, y, _ = training_frame(records[: 24 * 20])
    return batch_model.build_pipeline(**batch_model.sized(30)).fit(X, y)


def test_every_hours_prediction_on_demand_is_the_row_the_stream_then_writes_and_learns_nothing(records, model):
    predictor = Model(model)
    states: dict = {}
    raws = [RawRecord(encode(r), "s", f"{i:05d}") for i, r in enumerate(records)]
    process_batch(raws[: 24 * 20], states, predictor, "t")
    for i in range(24 * 20, 24 * 20 + 72):
        before = dump_states(states)
        asked = forecast.predict(states["301"], records[i], predictor)
        assert dump_states(states) == before
        (row,) = process_batch(raws[i : i + 1], states, predictor, "t").rows
        assert (asked.batch, asked.online, asked.served) == (row["batch_prediction"], row["online_prediction"],
                                                            row["served_prediction"])
        assert asked.bounds == {k: row[k] for k in asked.bounds} and asked.version == row["batch_model_version"]
    assert row["served_lower_90"] < row["served_lower_80"] < row["served_upper_80"] < row["served_upper_90"]


def test_a_record_the_stream_would_refuse_is_refused_with_its_reason(records):
    states: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records[:48])], states, None, "t")
    with pytest.raises(DecodeError) as refused:
        forecast.predict(states["301"], records[47], None)
    assert refused.value.reason == "duplicate_event"


def test_the_next_hour_carries_the_newest_hours_weather_and_no_volume(records):
    states: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records[:100])], states, None, "t")
    newest, ahead = records[99], forecast.next_hour(states["301"])
    assert ahead.local_time == newest.local_time + timedelta(hours=1) and ahead.station_id == "301"
    assert (ahead.temp, ahead.rain_1h, ahead.clouds_all, ahead.weather) == (newest.temp, newest.rain_1h,
                                                                           newest.clouds_all, newest.weather)
    assert ahead.holiday is None and forecast.predict(states["301"], ahead, None).online > 0


def test_a_forecast_of_a_holidays_first_hour_names_the_holiday_and_the_day_stays_marked():
    # The source names a holiday on its 00:00 record only; the forecast made at 23:00 the day
    # before has no record, so the calendar names it, and the features mark it as the record would.
    eve = [r for r in dataset.to_records(synthetic.generate(start="2016-12-18", hours=24 * 8, seed=5), "301")
           if r.local_time < datetime(2016, 12, 26)]
    states: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(eve)], states, None, "t")
    ahead = forecast.next_hour(states["301"])
    assert (ahead.local_time.hour, ahead.holiday) == (0, "Christmas Day")
    asked = forecast.predict(states["301"], ahead, None)
    assert (asked.features["is_holiday"], asked.features["is_day_off"]) == (1.0, 1.0)
    ordinary = [r for r in eve if r.local_time.hour == 23][-2]
    states = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(eve) if r.local_time <= ordinary.local_time],
                  states, None, "t")
    assert forecast.next_hour(states["301"]).holiday is None


def test_contributions_add_up_to_every_prediction_missing_lags_and_unseen_weather_included(records, model):
    X, _, _ = training_frame(records[24 * 20 :])
    X = X.copy()
    X.iloc[:20, FEATURE_COLUMNS.index("lag_1h")] = np.nan  # the stand-in base and the missing-value branches
    X.iloc[20:40, FEATURE_COLUMNS.index("weather_code")] = 250.0  # a category never seen: the missing way
    X.iloc[40:60, FEATURE_COLUMNS.index("weather_code")] = np.nan
    explained = TreeContributions(model).explain(X)
    predictions = model.predict(X)
    for e, p in zip(explained, predictions, strict=True):
        assert e.prediction == p
        assert e.base + e.expected_change + sum(e.contributions.values()) == pytest.approx(p, abs=1e-6)
    magnitudes = [abs(v) for _, v in explained[0].ranked()]
    assert magnitudes == sorted(magnitudes, reverse=True) and set(explained[0].contributions) == set(FEATURE_COLUMNS)


def test_concurrent_requests_share_one_batch_model_call(records, model):
    from serve.app import PredictionBatcher

    calls = []

    def predict(frame):
        calls.append(len(frame))
        return model.predict(frame)

    states: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records[:200])], states, None, "t")
    rows = [states["301"].history.features(r) for r in records[200:240]]

    async def ask():
        batcher = PredictionBatcher(predict)
        return await asyncio.gather(*(batcher.one(f) for f in rows))

    answers = asyncio.run(ask())
    assert answers == [float(v) for v in model.predict(to_frame(rows))]
    assert sum(calls) == 40 and len(calls) <= 2, calls  # the first alone, then all that waited


def test_the_consumer_never_loads_shap_numba_or_the_api():
    done = subprocess.run(
        [sys.executable, "-c",
         "import consumer.__main__, consumer.lambda_handler, sys\n"
         "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('shap', 'numba', 'llvmlite', 'serve'))\n"
         "assert not loaded, loaded"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
