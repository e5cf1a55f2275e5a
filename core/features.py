"""Causal features, one definition for training and serving.

A :class:`StationHistory` is the per-station state a consumer keeps (and checkpoints):
the volumes of the last week by wall-clock hour and the dates marked as holidays. The
features of a record depend only on the record and on the history *before* it, so the
training path (:func:`training_frame`) and the serving path (the consumer calling
:meth:`StationHistory.features` then :meth:`StationHistory.observe`) give identical
features for the same history.

>>> from datetime import datetime
>>> from core.schema import TrafficRecord
>>> def rec(hour, volume, holiday=None):
...     return TrafficRecord.build(station_id="301", local_time=datetime(2017, 1, 2, hour),
...         temp=100.0, rain_1h=0.0, snow_1h=0.0, clouds_all=0, weather=[("Clear", "sky is clear")],
...         holiday=holiday, traffic_volume=volume)
>>> h = StationHistory()
>>> h.observe(rec(0, 500, holiday="New Years Day"))
>>> f = h.features(rec(1, 400))
>>> f["lag_1h"], f["is_holiday"], f["temp_c"] != f["temp_c"]   # 100 K is a sensor fault -> NaN
(500.0, 1.0, True)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date

import numpy as np
import pandas as pd

from core.packing import pack_ints, unpack_ints
from core.schema import EPOCH, DecodeError, TrafficRecord

NUMERIC_FEATURES = (
    "hour",
    "weekday",
    "month",
    "hour_of_week",
    "is_holiday",
    "temp_c",
    "rain_1h",
    "snow_1h",
    "clouds_all",
    "lag_1h",
    "lag_2h",
    "lag_24h",
    "lag_168h",
    "mean_24h",
    "snaive_adj",
)
#: Categorical, as a small integer code (the batch model treats it as a category).
CATEGORICAL_FEATURES = ("weather_code",)
#: Seasonal forecasts moved by the last hour's departure: this hour's four-week mean and
#: yesterday's volume at this hour, each plus how far the last hour is from the same
#: reference's hour before.
ADJUSTED_FEATURES = ("wk4_adj", "snaive24_adj")
#: ``wk4_scaled``: the four-week mean at this hour scaled by the last hour's ratio to its
#: own four-week mean (``wk4_adj`` moves it by the difference instead); ``is_day_off``
#: (:data:`DAY_OFF_HOLIDAYS`).
SCALED_FEATURES = ("wk4_scaled", "is_day_off")
#: The batch model's columns, in order; new ones are appended. The pipeline finds the
#: categorical column and the last hours by their position in this tuple when it is built
#: (:func:`core.batch_model.build_pipeline`), and a champion is handed the columns it was
#: fitted on by name (:class:`adapters.model_registry.Champion`), so one fitted before a
#: column was added keeps serving.
FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES + ADJUSTED_FEATURES + SCALED_FEATURES
#: Computed for the online model only (the trees did no better with them as columns).
#: ``wk4_mean``: the four-week mean at this hour, its seasonal slope. ``lag_1h_est``: the
#: last hour, or where the source skipped it, an estimate; the trees handle a missing lag
#: natively.
ONLINE_ONLY_FEATURES = ("wk4_mean", "lag_1h_est")
#: Holidays on which most people do not work: their traffic looks like a Sunday's, where
#: the source's other holidays (Washington's Birthday, Columbus Day, Veterans Day, the State
#: Fair) look like weekdays. ``is_day_off`` lets the online model treat them as Sundays.
DAY_OFF_HOLIDAYS = frozenset(
    ("New Years Day", "Memorial Day", "Independence Day", "Labor Day", "Thanksgiving Day", "Christmas Day")
)
#: Weeks averaged by ``wk4_mean``: four fit in the retained history (4 × 168 + 1 < RETAIN_HOURS).
SEASONAL_WEEKS = (1, 2, 3, 4)
#: How far back ``lag_1h_est`` looks for a volume when the last hour is missing (the best
#: of the lengths tried on 2016: docs/models.md).
ESTIMATE_FROM_HOURS = 3
#: The source's primary weather conditions; anything else is coded as missing.
WEATHER_CODES = {
    name: float(code)
    for code, name in enumerate(
        ("Clear", "Clouds", "Mist", "Rain", "Snow", "Drizzle", "Haze", "Thunderstorm", "Fog", "Smoke", "Squall")
    )
}

#: Below this a reading is a sensor fault (the source has 0 K readings), not weather.
MIN_PLAUSIBLE_KELVIN = 200.0
#: Above this an hourly rain or snow reading is a fault (the source has a 9,831 mm hour;
#: the world record is about 300 mm in an hour).
MAX_PLAUSIBLE_MM_PER_HOUR = 300.0
#: How long a station remembers which hours it has processed. A record that comes late
#: (a producer's retried entry lands after later ones) is still used if its hour is newer
#: than this and unseen; older ones cannot be told from duplicates and are refused.
RETAIN_HOURS = 720
NAN = math.nan
#: Day keys: a holiday date's day number equals ``wall_clock_hour // 24`` of its hours.
_EPOCH_DATE = EPOCH.date()


def clean_weather(record: TrafficRecord) -> dict[str, float]:
    temp = record.temp
    temp_c = temp - 273.15 if temp is not None and temp >= MIN_PLAUSIBLE_KELVIN else NAN
    rain = record.rain_1h if record.rain_1h <= MAX_PLAUSIBLE_MM_PER_HOUR else NAN
    snow = record.snow_1h if record.snow_1h <= MAX_PLAUSIBLE_MM_PER_HOUR else NAN
    return {
        "temp_c": temp_c,
        "rain_1h": rain,
        "snow_1h": snow,
        "clouds_all": float(record.clouds_all),
        "weather_code": WEATHER_CODES.get(record.weather[0].main, NAN),
    }


class StationHistory:
    """What one station's past says about its next hour; small, causal, saved as plain data (:meth:`to_snapshot`)."""

    __slots__ = ("volumes", "hours", "holiday_dates", "last_hour")

    def __init__(self) -> None:
        self.volumes: dict[int, int] = {}
        self.hours: deque[int] = deque()
        #: Dates marked as holidays lately, with the holiday's name.
        self.holiday_dates: dict[date, str | None] = {}
        self.last_hour: int | None = None

    def admit(self, record: TrafficRecord) -> None:
        """Refuse a record already processed, or too old to tell; accept a late but new one."""
        hour = record.wall_clock_hour
        if hour in self.volumes:
            raise DecodeError("duplicate_event", f"{record.event_id} was already processed")
        if self.last_hour is not None and hour <= self.last_hour - RETAIN_HOURS:
            raise DecodeError(
                "out_of_order",
                f"{record.event_id} is more than {RETAIN_HOURS} h older than the newest hour of {record.station_id}",
            )

    def features(self, record: TrafficRecord) -> dict[str, float]:
        local = record.local_time
        hour = record.wall_clock_hour
        get = self.volumes.get
        recent = [v for v in map(get, range(hour - 24, hour)) if v is not None]
        v1, v24, v25, v168, v169 = get(hour - 1), get(hour - 24), get(hour - 25), get(hour - 168), get(hour - 169)
        holiday_days = {(d - _EPOCH_DATE).days for d in self.holiday_dates}
        # The same hour in each of the last four weeks, and the hour before it.
        wk4 = self._seasonal_mean(hour, holiday_days)
        wk4_before = self._seasonal_mean(hour - 1, holiday_days)
        holiday = record.holiday if record.holiday is not None else self.holiday_dates.get(local.date())
        is_holiday = record.holiday is not None or local.date() in self.holiday_dates
        features: dict[str, float] = {
            "hour": float(local.hour),
            "weekday": float(local.weekday()),
            "month": float(local.month),
            "hour_of_week": float(local.weekday() * 24 + local.hour),
            "is_holiday": 1.0 if is_holiday else 0.0,
            "lag_1h": _float(v1),
            "lag_2h": _float(get(hour - 2)),
            "lag_24h": _float(v24),
            "lag_168h": _float(v168),
            "mean_24h": sum(recent) / len(recent) if recent else NAN,
            # Last week's volume at this hour, moved by how far the last hour is from last week's.
            "snaive_adj": NAN if v1 is None or v168 is None or v169 is None else float(v168 + v1 - v169),
            "wk4_mean": wk4,
            # The four-week mean at this hour, and yesterday's hour, each moved the same way.
            "wk4_adj": NAN if v1 is None or wk4 != wk4 or wk4_before != wk4_before else wk4 + v1 - wk4_before,
            "snaive24_adj": NAN if v1 is None or v24 is None or v25 is None else float(v24 + v1 - v25),
            "wk4_scaled": NAN if v1 is None or wk4 != wk4 or not wk4_before > 0.0 else wk4 * v1 / wk4_before,
        }
        features["is_day_off"] = 1.0 if holiday in DAY_OFF_HOLIDAYS else 0.0
        features["lag_1h_est"] = float(v1) if v1 is not None else self._estimate_last_hour(hour, wk4_before, holiday_days)
        features.update(clean_weather(record))
        return features

    def _seasonal_mean(self, hour: int, holiday_days: set[int]) -> float:
        """The mean volume at ``hour`` minus one to four weeks, skipping holiday dates.

        A holiday in the last four weeks would pull the mean far down for its hours (New
        Year's Day in January's means); skipping them helps both models on 2016.
        """
        get = self.volumes.get
        present = []
        for k in SEASONAL_WEEKS:
            past = hour - 168 * k
            volume = get(past)
            if volume is not None and past // 24 not in holiday_days:
                present.append(volume)
        return sum(present) / len(present) if present else NAN

    def _estimate_last_hour(self, hour: int, wk4_before: float, holiday_days: set[int]) -> float:
        """The latest volume of the few hours before the last, moved by how the four-week
        means change from its hour to the last hour; NaN if there is none.

        The source skips single hours often (one hour in nine in 2016); the hour before is
        a poor stand-in at the morning ramp, where traffic doubles in an hour.
        """
        for back in range(2, ESTIMATE_FROM_HOURS + 1):
            volume = self.volumes.get(hour - back)
            if volume is not None:
                then = self._seasonal_mean(hour - back, holiday_days)
                if then != then or wk4_before != wk4_before:
                    return NAN
                return volume + wk4_before - then
        return NAN

    def observe(self, record: TrafficRecord) -> None:
        local = record.local_time
        hour = record.wall_clock_hour
        if hour not in self.volumes:
            self.hours.append(hour)
        self.volumes[hour] = record.traffic_volume
        newest = hour if self.last_hour is None else max(hour, self.last_hour)
        while self.hours and self.hours[0] <= newest - RETAIN_HOURS:
            self.volumes.pop(self.hours.popleft(), None)
        if record.holiday is not None:
            self.holiday_dates = {d: n for d, n in self.holiday_dates.items() if abs((local.date() - d).days) < 31}
            self.holiday_dates[local.date()] = record.holiday
        self.last_hour = newest

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`.

        ``hours`` holds exactly the keys of ``volumes``, in the order they entered it
        (:meth:`observe` adds and drops both together), so the volumes go as a list beside it;
        both packed (:mod:`core.packing`).
        """
        return {
            "hours": pack_ints(self.hours),
            "volumes": pack_ints([self.volumes[hour] for hour in self.hours]),
            "holidays": [[day.isoformat(), name] for day, name in self.holiday_dates.items()],
            "last_hour": self.last_hour,
        }

    @classmethod
    def from_snapshot(cls, data: dict) -> StationHistory:
        """The history :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        hours, volumes = unpack_ints(data["hours"]), unpack_ints(data["volumes"])
        history = cls()
        history.hours = deque(hours)
        history.volumes = dict(zip(hours, volumes))
        if not len(history.volumes) == len(hours) == len(volumes):
            raise ValueError("a history needs one volume per hour and no hour twice")
        history.holiday_dates = {date.fromisoformat(day): None if name is None else str(name)
                                 for day, name in data["holidays"]}
        history.last_hour = None if data["last_hour"] is None else int(data["last_hour"])
        return history


def _float(value: int | None) -> float:
    return NAN if value is None else float(value)


def to_frame(rows: list[dict[str, float]]) -> pd.DataFrame:
    """Feature dicts as the DataFrame the batch model takes (fixed column order, float64)."""
    values = np.array([[row[c] for c in FEATURE_COLUMNS] for row in rows], dtype="float64").reshape(-1, len(FEATURE_COLUMNS))
    return pd.DataFrame(values, columns=list(FEATURE_COLUMNS))


def stream_features(records: Iterable[TrafficRecord]) -> Iterator[tuple[TrafficRecord, dict[str, float]]]:
    """Each record with its features, in stream order, as serving computes them.

    Records that serving would refuse (a duplicate or a too-old hour) are skipped here too.
    """
    histories: dict[str, StationHistory] = {}
    for record in records:
        history = histories.setdefault(record.station_id, StationHistory())
        try:
            history.admit(record)
        except DecodeError:
            continue
        features = history.features(record)
        history.observe(record)
        yield record, features


def training_frame(records: Iterable[TrafficRecord]) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Features, target and local event times for records in stream order, as serving sees them."""
    rows, targets, times = [], [], []
    for record, features in stream_features(records):
        rows.append(features)
        targets.append(float(record.traffic_volume))
        times.append(record.local_time)
    return to_frame(rows), pd.Series(targets, name="traffic_volume"), pd.Series(pd.to_datetime(times), name="local_time")
