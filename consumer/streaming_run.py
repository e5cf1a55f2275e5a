"""The consumer's MLflow run: rolling batch/online MAE stepped by event hour, and a summary.

Each metric point's timestamp is the event time (ms since 1970): MLflow's charts plot it on
their "Time (wall)" x-axis as dates, the replayed hours, and on "Time (relative)" as the time
since the series' first point. Its step, the charts' default x-axis, is the number of whole
event hours since the first event the run logged: 0 at the start of the run, then one per
hour, gaps in the data left as gaps (an event older than that first one, from a shard taken
over later, gets a negative step). A tracking-server outage costs metric points (logged as a
warning), never records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from core.config import Settings
from core.drift import DriftEvent
from core.rolling import RollingErrors

log = logging.getLogger(__name__)

RUN_TYPE_TAG = "traffic.run_type"
STREAMING = "streaming"


class StreamingRun:
    def __init__(self, settings: Settings, window_hours: int = 168) -> None:
        self.client = MlflowClient()
        experiment = mlflow.get_experiment_by_name(settings.experiment)
        self.run_id = self.client.create_run(
            experiment.experiment_id,
            run_name=f"{STREAMING}-{settings.app_name}-{time.strftime('%Y%m%d-%H%M%S')}",
            tags={RUN_TYPE_TAG: STREAMING, "app_name": settings.app_name, "stream": settings.stream_name},
        ).info.run_id
        self.client.log_param(self.run_id, "rolling_window_hours", window_hours)
        self.rolling = RollingErrors(window_hours)
        self.totals = {"rows": 0, "dead_letters": 0, "batch_abs": 0.0, "batch_n": 0, "online_abs": 0.0}
        #: The event hour (hours since 1970) of step 0: the first event logged.
        self.first_hour: int | None = None

    def observe(self, rows: Sequence[dict], dead_letters: int) -> None:
        metrics = []
        for row in rows:
            actual, batch, online = float(row["traffic_volume"]), row["batch_prediction"], float(row["online_prediction"])
            self.rolling.add(actual, batch, online, float(row["served_prediction"]))
            self.totals["rows"] += 1
            self.totals["online_abs"] += abs(online - actual)
            if batch is not None:
                self.totals["batch_abs"] += abs(batch - actual)
                self.totals["batch_n"] += 1
            stamp, step = self._axes(str(row["event_time"]))
            metrics.extend(Metric(k, v, stamp, step) for k, v in self.rolling.mae().items() if v == v)
        self.totals["dead_letters"] += dead_letters
        try:
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])
        except Exception as exc:
            log.warning("could not log %d streaming metrics to MLflow: %s", len(metrics), exc)

    def observe_drift(self, events: Sequence[DriftEvent]) -> None:
        """Log each drift detection as a point of ``drift_<model>`` (the detector's statistic)
        at its event time, so the chart shows when and in which model's errors drift began."""
        if not events:
            return
        metrics = [Metric(f"drift_{event.model}", event.statistics["statistic"], *self._axes(event.event_time))
                   for event in events]
        try:
            self.client.log_batch(self.run_id, metrics=metrics)
        except Exception as exc:
            log.warning("could not log %d drift events to MLflow: %s", len(metrics), exc)

    def _axes(self, event_time: str) -> tuple[int, int]:
        """A point's timestamp (the event time in ms) and step (event hours since the first logged)."""
        moment = datetime.fromisoformat(event_time)
        hour = int(moment.timestamp() // 3600)
        if self.first_hour is None:
            self.first_hour = hour
        return int(moment.timestamp() * 1000), hour - self.first_hour

    def close(self) -> None:
        t = self.totals
        summary = {"rows": float(t["rows"]), "dead_letters": float(t["dead_letters"])}
        if t["rows"]:
            summary["online_mae_total"] = t["online_abs"] / t["rows"]
        if t["batch_n"]:
            summary["batch_mae_total"] = t["batch_abs"] / t["batch_n"]
        try:
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in summary.items()])
            self.client.set_terminated(self.run_id)
        except Exception as exc:
            log.warning("could not close the streaming run in MLflow: %s", exc)
