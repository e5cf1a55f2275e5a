"""A synthetic dataset with the schema and quirks of the real one, for tests and benchmarks.

It writes the same columns as the UCI file and reproduces what makes that file awkward:
hours with several weather rows, missing hours and a long gap, the holiday marked only on
the 00:00 row, ``"None"`` as the holiday text, 0 K temperatures, a huge rain outlier and
the daylight-saving fall-back hour duplicated. Volumes follow a daily and weekly profile,
so models learn something real from it.

>>> frame = generate(start="2016-01-01", hours=24 * 14, seed=1)
>>> list(frame.columns) == list(COLUMNS)
True
>>> bool((frame["holiday"] == "None").all() or (frame["holiday"] != "").all())
True
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import COLUMNS

_CONDITIONS = (
    ("Clear", "sky is clear"),
    ("Clouds", "overcast clouds"),
    ("Clouds", "scattered clouds"),
    ("Mist", "mist"),
    ("Rain", "light rain"),
    ("Snow", "light snow"),
    ("Drizzle", "light intensity drizzle"),
    ("Fog", "fog"),
)
_HOLIDAYS = {(1, 1): "New Years Day", (7, 4): "Independence Day", (12, 25): "Christmas Day"}


def hourly_profile(hour: int, weekday: int) -> float:
    """Typical volume for a local hour and weekday (0 = Monday): two rush hours on weekdays."""
    base = 300 + 2600 * math.exp(-((hour - 14.5) ** 2) / 30)
    if weekday < 5:
        base += 2700 * math.exp(-((hour - 7.5) ** 2) / 2) + 2400 * math.exp(-((hour - 16.5) ** 2) / 3)
    return base * (0.8 if weekday >= 5 else 1.0)


def generate(
    start: str = "2015-01-01",
    hours: int = 24 * 365,
    seed: int = 0,
    missing_rate: float = 0.05,
    gap: tuple[int, int] | None = None,
    level_shift: tuple[str, float] | None = None,
) -> pd.DataFrame:
    """Return a frame shaped like the UCI CSV (``date_time`` as text), in time order.

    ``level_shift`` (first hour, factor) multiplies every volume from that hour on, as a
    lane closure would: the abrupt concept drift the drift detectors must find.
    """
    shift_from = pd.Timestamp(level_shift[0]) if level_shift is not None else None
    rng = np.random.default_rng(seed)
    times = pd.date_range(start=start, periods=hours, freq="h")
    keep = rng.random(hours) >= missing_rate
    if gap is not None:
        keep[gap[0] : gap[0] + gap[1]] = False
    rows: list[tuple] = []
    for t, kept in zip(times, keep, strict=True):
        if not kept or _is_spring_forward_hour(t):
            continue
        holiday_name = _HOLIDAYS.get((t.month, t.day))
        volume = hourly_profile(t.hour, t.weekday()) * (0.6 if holiday_name else 1.0)
        volume = volume * rng.normal(1.0, 0.06)
        if shift_from is not None and t >= shift_from:
            volume *= level_shift[1]
        volume = int(max(0, round(volume)))
        temp = float(round(268 + 15 * math.sin((t.dayofyear - 110) / 58) + rng.normal(0, 3), 2))
        if rng.random() < 0.0005:
            temp = 0.0
        rain = float(round(rng.exponential(0.4), 2)) if rng.random() < 0.08 else 0.0
        if rng.random() < 0.0002:
            rain = 9831.3
        snow = float(round(rng.exponential(0.1), 2)) if temp and temp < 272 and rng.random() < 0.05 else 0.0
        clouds = int(rng.integers(0, 101))
        n_conditions = 1 if rng.random() > 0.12 else int(rng.integers(2, 5))
        picks = rng.choice(len(_CONDITIONS), size=n_conditions, replace=False)
        holiday = holiday_name if (holiday_name and t.hour == 0) else "None"
        stamp = t.strftime("%Y-%m-%d %H:%M:%S")
        for i in picks:
            main, description = _CONDITIONS[i]
            rows.append((holiday, temp, rain, snow, clouds, main, description, stamp, volume))
        if _is_fall_back_hour(t):
            rows.append(rows[-1])
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _is_spring_forward_hour(t: pd.Timestamp) -> bool:
    # Second Sunday of March, 02:00: an hour US clocks skip, absent from the real data too.
    return t.month == 3 and t.weekday() == 6 and 8 <= t.day <= 14 and t.hour == 2


def _is_fall_back_hour(t: pd.Timestamp) -> bool:
    # First Sunday of November, 01:00: the hour US clocks show twice.
    return t.month == 11 and t.weekday() == 6 and t.day <= 7 and t.hour == 1


def write_csv(path: Path, **kwargs) -> Path:
    """Write a synthetic CSV (gzip when the name ends in ``.gz``) and return its path."""
    generate(**kwargs).to_csv(path, index=False, compression="infer")
    return path


def many_stations(records: list, count: int, seed: int = 0) -> list:
    """Clearly synthetic stations: the given series scaled per station, ids ``syn-01`` ...

    Returned in event-time order across stations (as a live multi-station stream would be).

    >>> from core import dataset
    >>> base = dataset.to_records(generate(hours=48, seed=1), "301")
    >>> out = many_stations(base, 3)
    >>> len(out) == 3 * len(base), sorted({r.station_id for r in out})
    (True, ['syn-01', 'syn-02', 'syn-03'])
    """
    from core.schema import TrafficRecord

    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.6, 1.4, size=count)
    out = []
    for index, scale in enumerate(scales, start=1):
        station = f"syn-{index:02d}"
        for r in records:
            out.append(
                TrafficRecord.build(
                    station_id=station, local_time=r.local_time, temp=r.temp, rain_1h=r.rain_1h, snow_1h=r.snow_1h,
                    clouds_all=r.clouds_all, weather=[(w.main, w.description) for w in r.weather], holiday=r.holiday,
                    traffic_volume=int(round(r.traffic_volume * scale)),
                )
            )
    out.sort(key=lambda r: (r.event_time, r.station_id))
    return out
