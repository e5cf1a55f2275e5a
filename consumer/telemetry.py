"""What the consumer reports about its work, as Prometheus metrics (:mod:`adapters.metrics`).

Updated once per read and per committed batch, never per record, but for the rolling
errors: each station keeps its last 168 hours' errors (:class:`core.rolling.RollingErrors`)
and its gauges are set once per batch that touched it. Counts are of committed batches
only, so a batch that fails and is read again is counted once, when it commits.

>>> from prometheus_client import CollectorRegistry
>>> from core.processing import BatchOutcome
>>> registry = CollectorRegistry()
>>> telemetry = Telemetry(ConsumerMetrics(registry))
>>> row = {"station_id": "301", "event_time": "2017-01-01T08:00:00-06:00", "traffic_volume": 5000,
...        "batch_prediction": 4900.0, "online_prediction": 5200.0, "served_prediction": 4950.0}
>>> telemetry.committed("shardId-000", BatchOutcome(rows=[row], dead_letters=[]), records=1)
>>> registry.get_sample_value("traffic_consumer_rolling_mae_vehicles", {"station_id": "301", "model": "online"})
200.0
>>> registry.get_sample_value("traffic_consumer_drift_detections_total", {"station_id": "301", "model": "batch"})
0.0
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from adapters.metrics import ConsumerMetrics
from core.drift import MODELS
from core.processing import BatchOutcome
from core.rolling import RollingErrors

log = logging.getLogger(__name__)

#: Hours of a station's errors its rolling MAE covers: a week.
WINDOW_HOURS = 168
_MODELS = (("batch", "batch_mae"), ("online", "online_mae"), ("served", "combined_mae"))


class Telemetry:
    def __init__(self, families: ConsumerMetrics) -> None:
        self.families = families
        self.errors: dict[str, RollingErrors] = {}

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time a stage of a group's batches (``process``, ``commit``) into the duration histogram."""
        with self.families.batch_duration.labels(stage=stage).time():
            yield

    def read(self, shard_id: str, millis_behind: int) -> None:
        self.families.behind_latest.labels(shard_id=shard_id).set(millis_behind / 1000.0)

    def failed(self, shard_id: str) -> None:
        self.families.batch_failures.labels(shard_id=shard_id).inc()

    def shards(self, held: int) -> None:
        self.families.leases_held.set(held)

    def champion(self, version: str | None) -> None:
        """The serving version as a number (registry versions are); NaN for none, or for a name."""
        try:
            value = float(version) if version is not None else float("nan")
        except ValueError:
            value = float("nan")
        self.families.champion_version.set(value)

    def committed(self, shard_id: str, outcome: BatchOutcome, records: int) -> None:
        """Count a committed batch: its records, rows, dead letters by reason, drift events,
        the newest event time, and each station's rolling errors."""
        families = self.families
        errors = self.errors
        touched = {row["station_id"] for row in outcome.rows}
        for station in touched - errors.keys():
            errors[station] = RollingErrors(WINDOW_HOURS)
            for model in MODELS:  # at 0 from the station's first batch, so increase() counts its first drift
                families.drift_detections.labels(station_id=station, model=model)
        families.records_read.labels(shard_id=shard_id).inc(records)
        families.result_rows.labels(shard_id=shard_id).inc(len(outcome.rows))
        for letter in outcome.dead_letters:
            families.dead_letters.labels(shard_id=shard_id, reason=letter.reason).inc()
        for event in outcome.drift_events:
            families.drift_detections.labels(station_id=event.station_id, model=event.model).inc()
            log.warning("drift in the %s model's errors at station %s, %s: %s", event.model, event.station_id,
                        event.event_time, ", ".join(f"{k} {v:.4g}" for k, v in event.statistics.items()))
        if not touched:
            return
        for row in outcome.rows:
            errors[row["station_id"]].add(row["traffic_volume"], row["batch_prediction"], row["online_prediction"],
                                          row["served_prediction"])
        if outcome.newest_event is not None:
            families.newest_event.labels(shard_id=shard_id).set(outcome.newest_event.timestamp())
        for station in touched:
            mae = errors[station].mae()
            for model, key in _MODELS:
                families.rolling_mae.labels(station_id=station, model=model).set(mae[key])
