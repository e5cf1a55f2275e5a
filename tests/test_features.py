import math
from datetime import datetime, timedelta

import pandas as pd

from core import features
from core.processing import RawRecord, StationState, process_batch
from core.schema import TrafficRecord, encode


def rec(t: datetime, volume: int, holiday=None, temp=280.0, rain=0.0) -> TrafficRecord:
    return TrafficRecord.build(
        station_id="301", local_time=t, temp=temp, rain_1h=rain, snow_1h=0.0, clouds_all=10,
        weather=[("Clear", "sky is clear")], holiday=holiday, traffic_volume=volume,
    )


def test_lags_are_by_timestamp_and_missing_when_the_hour_is_absent():
    h = features.StationHistory()
    t0 = datetime(2017, 3, 1, 0)
    for i in range(170):
        if i not in (100, 150):  # two absent hours
            h.observe(rec(t0 + timedelta(hours=i), 1000 + i))
    f = h.features(rec(t0 + timedelta(hours=170), 5))
    assert f["lag_1h"] == 1169.0
    assert f["lag_24h"] == 1146.0
    assert f["lag_168h"] == 1002.0
    expected_mean = sum(1000 + i for i in range(146, 170) if i != 150) / 23
    assert math.isclose(f["mean_24h"], expected_mean)
    f = h.features(rec(t0 + timedelta(hours=174), 5))  # 174-24 = 150 is absent
    assert math.isnan(f["lag_24h"]) and math.isnan(f["lag_1h"])


def test_seasonal_features_average_the_weeks_present_and_move_by_the_last_hour():
    h = features.StationHistory()
    t0 = datetime(2017, 3, 1, 0)
    volume = {i: 1000 + 3 * i for i in range(700)}
    del volume[700 - 336]  # two weeks ago at this hour is absent
    for i, v in volume.items():
        h.observe(rec(t0 + timedelta(hours=i), v))
    f = h.features(rec(t0 + timedelta(hours=700), 5))
    this_hour = [volume[700 - 168 * k] for k in (1, 3, 4)]
    hour_before = [volume[699 - 168 * k] for k in (1, 2, 3, 4)]
    assert math.isclose(f["wk4_mean"], sum(this_hour) / 3)
    assert math.isclose(f["wk4_adj"], sum(this_hour) / 3 + volume[699] - sum(hour_before) / 4)
    assert f["snaive24_adj"] == volume[676] + volume[699] - volume[675]
    # Without the last hour neither adjusted forecast exists; the four-week mean still does.
    f = h.features(rec(t0 + timedelta(hours=701), 5))
    assert math.isnan(f["wk4_adj"]) and math.isnan(f["snaive24_adj"]) and not math.isnan(f["wk4_mean"])
    assert set(features.FEATURE_COLUMNS) < set(f) and "wk4_mean" not in features.FEATURE_COLUMNS


def test_history_is_bounded():
    h = features.StationHistory()
    t0 = datetime(2017, 3, 1, 0)
    for i in range(1000):
        h.observe(rec(t0 + timedelta(hours=i), 1))
    assert len(h.volumes) == features.RETAIN_HOURS


def test_holiday_marked_at_midnight_spreads_over_its_date_only():
    h = features.StationHistory()
    day = datetime(2017, 7, 4)
    h.observe(rec(day, 800, holiday="Independence Day"))
    assert h.features(rec(day + timedelta(hours=15), 1))["is_holiday"] == 1.0
    assert h.features(rec(day + timedelta(hours=24), 1))["is_holiday"] == 0.0


def test_day_off_holidays_are_told_from_working_ones():
    h = features.StationHistory()
    christmas, columbus = datetime(2017, 12, 25), datetime(2017, 10, 9)
    h.observe(rec(columbus, 500, holiday="Columbus Day"))
    f = h.features(rec(columbus + timedelta(hours=8), 1))
    assert (f["is_holiday"], f["is_day_off"]) == (1.0, 0.0)
    h.observe(rec(christmas, 500, holiday="Christmas Day"))
    f = h.features(rec(christmas + timedelta(hours=8), 1))
    assert (f["is_holiday"], f["is_day_off"]) == (1.0, 1.0)
    assert h.features(rec(christmas + timedelta(hours=24), 1))["is_day_off"] == 0.0


def test_four_week_means_skip_holidays_and_a_skipped_hour_is_estimated():
    t0 = datetime(2017, 6, 5, 0)
    volume = {i: 1000 + 7 * (i % 24) + i for i in range(672)}  # four weeks, every hour distinct
    h = features.StationHistory()
    for i, v in volume.items():
        h.observe(rec(t0 + timedelta(hours=i), v, holiday="State Fair" if i == 504 else None))
    # Hour 680's weeks are hours 512, 344, 176 and 8; 512 lies on the holiday (hours 504..527).
    f = h.features(rec(t0 + timedelta(hours=680), 5))
    assert f["wk4_mean"] == sum(volume[680 - 168 * k] for k in (2, 3, 4)) / 3
    # Without the holiday all four weeks count; with hour 679 missing, its estimate is hour
    # 678 moved by the four-week means' step from 678 to 679.
    h = features.StationHistory()
    for i, v in volume.items():
        h.observe(rec(t0 + timedelta(hours=i), v))
    h.observe(rec(t0 + timedelta(hours=678), 1500))
    f = h.features(rec(t0 + timedelta(hours=680), 5))
    step = sum(volume[679 - 168 * k] - volume[678 - 168 * k] for k in (1, 2, 3, 4)) / 4
    assert math.isnan(f["lag_1h"]) and f["lag_1h_est"] == 1500 + step
    assert f["wk4_mean"] == sum(volume[680 - 168 * k] for k in (1, 2, 3, 4)) / 4
    assert math.isnan(h.features(rec(t0 + timedelta(hours=682), 5))["lag_1h_est"])  # none within 3 hours
    assert h.features(rec(t0 + timedelta(hours=679), 5))["lag_1h_est"] == 1500  # present: itself


def test_weather_faults_are_cleaned():
    f = features.StationHistory().features(rec(datetime(2017, 1, 1), 1, temp=0.0, rain=9831.3))
    assert math.isnan(f["temp_c"]) and math.isnan(f["rain_1h"])
    f = features.StationHistory().features(rec(datetime(2017, 1, 1), 1, temp=273.15, rain=2.5))
    assert f["temp_c"] == 0.0 and f["rain_1h"] == 2.5


def test_training_and_serving_paths_give_identical_features(synthetic_records, monkeypatch):
    records = synthetic_records[:3000]
    X_train, y, _ = features.training_frame(records)

    served: list[dict] = []

    class Capture:
        version = "test"

        def predict(self, frame):
            served.append(frame)
            return [0.0] * len(frame)

    states: dict[str, StationState] = {}
    raws = [RawRecord(encode(r), "shard-0", str(i)) for i, r in enumerate(records)]
    for i in range(0, len(raws), 500):  # batch boundaries must not matter
        process_batch(raws[i : i + 500], states, Capture(), "now")
    X_serve = pd.concat(served, ignore_index=True)
    pd.testing.assert_frame_equal(X_train, X_serve)
    assert y.tolist() == [float(r.traffic_volume) for r in records]
