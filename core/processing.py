"""The processing of one batch of stream records: pure, deterministic, server-free.

For a batch read from one shard, in sequence order:

1. decode and validate each record; a bad one becomes a :class:`DeadLetter` with its
   reason and raw payload, and the batch goes on;
2. compute its features from its station's history, then add it to that history;
3. predict the whole batch with the batch model in one call (several shards' batches
   together with :func:`process_batches`);
4. record by record, the station's online model predicts, then learns the true volume;
   the served prediction weights both models by their recent errors and carries part
   of the last hour's residual (:class:`core.ensemble.Combiner`), and gets its intervals
   from the station's recent served errors (:class:`core.intervals.ConformalBand`); then
   both learn this hour's.

The same inputs and the same starting state always give the same rows and the same end
state; the consumer's exactly-once guarantees rest on that.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from core.drift import DriftEvent, ErrorDrift
from core.ensemble import Combiner
from core.features import StationHistory, to_frame
from core.intervals import ConformalBand
from core.online_model import OnlineModel
from core.results import result_row
from core.schema import DecodeError, TrafficRecord, decode


@dataclass(frozen=True)
class RawRecord:
    """A record as read from a shard, before anything is trusted about its payload."""

    data: bytes
    shard_id: str
    sequence_number: str
    partition_key: str = ""


@dataclass(frozen=True)
class DeadLetter:
    shard_id: str
    sequence_number: str
    partition_key: str
    reason: str
    message: str
    payload: bytes

    def as_dict(self, recorded_at: str) -> dict[str, object]:
        try:
            text: str | None = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "partition_key": self.partition_key,
            "reason": self.reason,
            "message": self.message,
            "payload_base64": base64.b64encode(self.payload).decode("ascii"),
            "payload_text": text,
            "recorded_at": recorded_at,
        }


@dataclass
class StationState:
    """Everything the stream has taught us about one station: lag history, online model, how
    to weight the two models' predictions, whether their errors have drifted, and how far
    off the served prediction has lately been (its intervals)."""

    history: StationHistory = field(default_factory=StationHistory)
    online: OnlineModel = field(default_factory=OnlineModel)
    combiner: Combiner = field(default_factory=Combiner)
    drift: ErrorDrift = field(default_factory=ErrorDrift)
    band: ConformalBand = field(default_factory=ConformalBand)
    #: The newest hour processed: what the next hour's forecast starts from (:mod:`core.forecast`).
    latest: TrafficRecord | None = None

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`."""
        return {"history": self.history.to_snapshot(), "online": self.online.to_snapshot(),
                "combiner": self.combiner.to_snapshot(), "drift": self.drift.to_snapshot(),
                "band": self.band.to_snapshot(),
                "latest": None if self.latest is None else self.latest.model_dump(mode="json")}

    @classmethod
    def from_snapshot(cls, data: dict) -> StationState:
        """The state :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        return cls(StationHistory.from_snapshot(data["history"]), OnlineModel.from_snapshot(data["online"]),
                   Combiner.from_snapshot(data["combiner"]), ErrorDrift.from_snapshot(data["drift"]),
                   ConformalBand.from_snapshot(data["band"]),
                   None if data["latest"] is None else TrafficRecord.model_validate_json(json.dumps(data["latest"])))


class BatchPredictor(Protocol):
    version: str | None

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchOutcome:
    rows: list[dict[str, object]]
    dead_letters: list[DeadLetter]
    drift_events: list[DriftEvent] = field(default_factory=list)
    #: The stations whose state the batch may have changed (every station a record decoded
    #: for, accepted or not): the ones a commit has to store again.
    stations: frozenset[str] = frozenset()
    #: The latest event time among the rows (an aware datetime), None without rows.
    newest_event: datetime | None = None


def process_batch(
    records: Sequence[RawRecord],
    states: dict[str, StationState],
    predictor: BatchPredictor | None,
    processed_at: str,
) -> BatchOutcome:
    """Turn a batch into result rows and dead letters, advancing ``states`` in place."""
    return process_batches([(records, states)], predictor, processed_at)[0]


def process_batches(
    batches: Sequence[tuple[Sequence[RawRecord], dict[str, StationState]]],
    predictor: BatchPredictor | None,
    processed_at: str,
) -> list[BatchOutcome]:
    """Process several batches, each with its own states, predicting all of them in one call.

    A consumer reading many shards hands them over together, one model call per group:
    scikit-learn walks the trees one Python-level call per tree (2 × ``TRAFFIC_BATCH_TREES``,
    500 per member by default), so every call pays a fixed cost before its first row (about
    12 ms for the default's 2 × 500 trees) and larger calls cost less a row
    (``docs/benchmarks.md``).
    Every outcome is exactly what :func:`process_batch` gives for that batch alone.

    >>> from core import synthetic, dataset
    >>> from core.schema import encode
    >>> records = dataset.to_records(synthetic.generate(hours=6, seed=1), "301")
    >>> raws = [RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records)]
    >>> together = process_batches([(raws[:2], {}), (raws[2:], {})], None, "t")
    >>> [len(o.rows) for o in together], together[1].rows[0]["online_updates"]
    ([2, 4], 1)
    """
    prepared = [_prepare(records, states) for records, states in batches]
    features = [f for accepted, _, _ in prepared for _, _, f in accepted]
    if features and predictor is not None:
        predictions: list[float | None] = [float(p) for p in predictor.predict(to_frame(features))]
        version = predictor.version
    else:
        predictions, version = [None] * len(features), None
    outcomes, start = [], 0
    for (accepted, dead, touched), (_, states) in zip(prepared, batches, strict=True):
        rows, events = _learn(accepted, states, predictions[start : start + len(accepted)], version, processed_at)
        start += len(accepted)
        newest = max((record.event_time for _, record, _ in accepted), default=None)
        outcomes.append(BatchOutcome(rows=rows, dead_letters=dead, drift_events=events, stations=touched,
                                     newest_event=newest))
    return outcomes


_Accepted = list[tuple[RawRecord, TrafficRecord, dict[str, float]]]


def _prepare(records: Sequence[RawRecord],
             states: dict[str, StationState]) -> tuple[_Accepted, list[DeadLetter], frozenset[str]]:
    """Decode, validate and featurize in sequence order; the histories advance as records are
    accepted. Also returns the stations a record decoded for."""
    accepted: _Accepted = []
    dead: list[DeadLetter] = []
    touched: set[str] = set()
    for raw in records:
        try:
            record = decode(raw.data)
            touched.add(record.station_id)
            state = states.get(record.station_id)
            if state is None:
                state = states[record.station_id] = StationState()
            state.history.admit(record)
        except DecodeError as exc:
            dead.append(DeadLetter(raw.shard_id, raw.sequence_number, raw.partition_key, exc.reason, exc.message, raw.data))
            continue
        features = state.history.features(record)
        state.history.observe(record)
        accepted.append((raw, record, features))
    return accepted, dead, frozenset(touched)


def _learn(
    accepted: _Accepted,
    states: dict[str, StationState],
    batch_predictions: Sequence[float | None],
    version: str | None,
    processed_at: str,
) -> tuple[list[dict[str, object]], list[DriftEvent]]:
    """Record by record: the online model predicts then learns, the served prediction is weighed,
    the drift detectors see the errors."""
    rows, events = [], []
    for (raw, record, features), batch_prediction in zip(accepted, batch_predictions, strict=True):
        state = states[record.station_id]
        actual = float(record.traffic_volume)
        online_prediction = state.online.predict_then_learn(features, actual)
        served_prediction = state.combiner.predict_then_learn(
            actual, batch_prediction, online_prediction, record.wall_clock_hour
        )
        hour_of_day = record.local_time.hour
        bounds = state.band.bounds(served_prediction, hour_of_day)
        state.band.learn(actual, served_prediction, hour_of_day)
        if state.latest is None or record.wall_clock_hour > state.latest.wall_clock_hour:
            state.latest = record
        rows.append(
            result_row(
                record,
                batch_prediction=batch_prediction,
                online_prediction=online_prediction,
                served_prediction=served_prediction,
                served_bounds=bounds,
                batch_model_version=version,
                online_updates=state.online.updates,
                shard_id=raw.shard_id,
                sequence_number=raw.sequence_number,
                processed_at=processed_at,
            )
        )
        predictions = {"batch": batch_prediction, "online": online_prediction, "served": served_prediction}
        for model, statistics in state.drift.update(actual, predictions):
            events.append(DriftEvent(record.station_id, record.event_time.isoformat(), model, statistics,
                                     raw.shard_id, raw.sequence_number, version))
    return rows, events
