"""The rows the consumer writes to S3, and their way back to records for retraining.

A result row carries the prediction of both models and the served one (their weighted
combination) beside the actual volume, plus the
inputs of the hour, so that the prediction table alone is enough to retrain on "all
records seen so far" and to audit any prediction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from core.schema import TrafficRecord, WeatherCondition

RESULT_COLUMNS = (
    "event_id",
    "station_id",
    "event_time",
    "event_date",
    "traffic_volume",
    "batch_prediction",
    "online_prediction",
    "served_prediction",
    "served_lower_80",
    "served_upper_80",
    "served_lower_90",
    "served_upper_90",
    "batch_model_version",
    "online_updates",
    "temp",
    "rain_1h",
    "snow_1h",
    "clouds_all",
    "weather",
    "holiday",
    "shard_id",
    "sequence_number",
    "processed_at",
)


def result_row(
    record: TrafficRecord,
    *,
    batch_prediction: float | None,
    online_prediction: float | None,
    served_prediction: float | None,
    batch_model_version: str | None,
    served_bounds: Mapping[str, float | None] | None = None,
    online_updates: int,
    shard_id: str,
    sequence_number: str,
    processed_at: str,
) -> dict[str, object]:
    return {
        "event_id": record.event_id,
        "station_id": record.station_id,
        "event_time": record.event_time.isoformat(),
        "event_date": record.local_time.date().isoformat(),
        "traffic_volume": record.traffic_volume,
        "batch_prediction": batch_prediction,
        "online_prediction": online_prediction,
        "served_prediction": served_prediction,
        **_bounds(served_bounds),
        "batch_model_version": batch_model_version,
        "online_updates": online_updates,
        "temp": record.temp,
        "rain_1h": record.rain_1h,
        "snow_1h": record.snow_1h,
        "clouds_all": record.clouds_all,
        "weather": json.dumps([[w.main, w.description] for w in record.weather]),
        "holiday": record.holiday,
        "shard_id": shard_id,
        "sequence_number": sequence_number,
        "processed_at": processed_at,
    }


_BOUND_COLUMNS = RESULT_COLUMNS[RESULT_COLUMNS.index("served_prediction") + 1 : RESULT_COLUMNS.index("batch_model_version")]


def _bounds(given: Mapping[str, float | None] | None) -> dict[str, float | None]:
    """The interval columns (:mod:`core.intervals`), None where not given."""
    given = given or {}
    return {name: given.get(name) for name in _BOUND_COLUMNS}


def event_time_of(row: Mapping[str, object]) -> datetime:
    """A row's event time with the UTC offset it was sent with: from the stored instant and
    ``event_utc_offset_minutes`` (typed rows read back), or from its ISO text (the consumer's).

    >>> event_time_of({"event_time": datetime(2017, 7, 1, 13, tzinfo=timezone.utc), "event_utc_offset_minutes": -300})
    datetime.datetime(2017, 7, 1, 8, 0, tzinfo=datetime.timezone(datetime.timedelta(days=-1, seconds=68400)))
    >>> event_time_of({"event_time": "2017-07-01T08:00:00-05:00"}).isoformat()
    '2017-07-01T08:00:00-05:00'
    """
    value = row["event_time"]
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    offset = timezone(timedelta(minutes=int(row["event_utc_offset_minutes"])))  # type: ignore[call-overload]
    return datetime.fromtimestamp(value.timestamp(), offset)  # type: ignore[attr-defined]


def record_from_row(row: Mapping[str, object]) -> TrafficRecord:
    """Rebuild the input record of a result row (inverse of :func:`result_row` on its inputs)."""
    temp = row["temp"]
    holiday = row["holiday"]
    return TrafficRecord(
        schema_version=1,
        event_id=str(row["event_id"]),
        station_id=str(row["station_id"]),
        event_time=event_time_of(row),
        temp=None if temp is None or temp != temp else float(temp),  # type: ignore[operator]
        rain_1h=float(row["rain_1h"]),  # type: ignore[arg-type]
        snow_1h=float(row["snow_1h"]),  # type: ignore[arg-type]
        clouds_all=int(row["clouds_all"]),  # type: ignore[call-overload]
        weather=[WeatherCondition(main=m, description=d) for m, d in json.loads(str(row["weather"]))],
        holiday=None if holiday is None or holiday != holiday else str(holiday),  # type: ignore[comparison-overlap]
        traffic_volume=int(row["traffic_volume"]),  # type: ignore[call-overload]
    )
