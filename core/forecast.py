"""Predictions on demand from a station's committed state: read-only, the same numbers the stream writes.

:func:`predict` gives an hour's batch, online and served predictions and the served
intervals exactly as :func:`core.processing.process_batch` would write them if that record
arrived next, without learning anything: the record is checked as the stream admits it
(a duplicate or too-late hour is refused with the dead letter's reason), its features come
from the same :class:`~core.features.StationHistory`, and each model predicts as it does
before it learns.

:func:`next_hour` is the record of the hour after the station's newest: its calendar is
known, its weather is not, so it carries the newest hour's weather (persistence: the
weather an hour on is most often the same). Its holiday is the calendar's
(:mod:`core.holiday_calendar`) on the first hour of a date, where the source names it; the
station's history marks the rest of that day, as it does for the stream's own records.
``bench.accuracy`` measures what not knowing the hour's weather costs.

>>> from core import dataset, synthetic
>>> from core.processing import RawRecord, process_batch
>>> from core.schema import encode
>>> records = dataset.to_records(synthetic.generate(hours=48, seed=1), "301")
>>> states = {}
>>> _ = process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records[:-1])], states, None, "t")
>>> asked = predict(states["301"], records[-1], None)
>>> row = process_batch([RawRecord(encode(records[-1]), "s", "47")], states, None, "t").rows[0]
>>> (asked.online, asked.served) == (row["online_prediction"], row["served_prediction"])
True
>>> next_hour(states["301"]).local_time == records[-1].local_time + timedelta(hours=1)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.features import to_frame
from core.holiday_calendar import holiday_on
from core.processing import BatchPredictor, StationState
from core.schema import TrafficRecord


@dataclass(frozen=True)
class HourPrediction:
    """One hour's predictions, as the stream would write them."""

    record: TrafficRecord
    features: dict[str, float]
    batch: float | None
    online: float
    served: float
    #: ``served_lower_80`` .. ``served_upper_90`` (:mod:`core.intervals`), None where not calibrated yet.
    bounds: dict[str, float | None]
    #: The batch model's version, None while there is no champion.
    version: str | None


def predict(state: StationState, record: TrafficRecord, predictor: BatchPredictor | None) -> HourPrediction:
    """``record``'s predictions given ``state``, which is left as it was.

    Raises :class:`core.schema.DecodeError` for a record the stream would refuse (a
    duplicate or out-of-order hour), with the same reason.
    """
    inputs = features(state, record)
    batch = None if predictor is None else float(predictor.predict(to_frame([inputs]))[0])
    return complete(state, record, inputs, batch, None if predictor is None else predictor.version)


def features(state: StationState, record: TrafficRecord) -> dict[str, float]:
    """``record``'s model inputs given ``state``, once the stream would admit it (else :class:`DecodeError`)."""
    state.history.admit(record)
    return state.history.features(record)


def complete(state: StationState, record: TrafficRecord, inputs: dict[str, float], batch: float | None,
             version: str | None) -> HourPrediction:
    """The online and served predictions and intervals around the batch model's ``batch``
    (predicted elsewhere, e.g. in one call for many requests)."""
    online = state.online.predict(inputs)
    served = state.combiner.predict(batch, online, record.wall_clock_hour)
    return HourPrediction(record, inputs, batch, online, served, state.band.bounds(served, record.local_time.hour),
                          version)


def next_hour(state: StationState) -> TrafficRecord | None:
    """The hour after the station's newest, with the newest hour's weather and the calendar's
    holiday at midnight; None before its first hour."""
    latest = state.latest
    if latest is None:
        return None
    local_time = latest.local_time + timedelta(hours=1)
    return TrafficRecord.build(
        station_id=latest.station_id, local_time=local_time, temp=latest.temp,
        rain_1h=latest.rain_1h, snow_1h=latest.snow_1h, clouds_all=latest.clouds_all,
        weather=[(w.main, w.description) for w in latest.weather],
        holiday=holiday_on(local_time.date()) if local_time.hour == 0 else None, traffic_volume=0,
    )
