"""The Prometheus metrics every component exposes, and the HTTP endpoint that serves them.

All metric families are declared here, so the names a dashboard queries
(``dashboards/grafana``) and the names the code updates are in one place. Names follow
Prometheus conventions: a ``traffic_<component>_`` prefix, the unit in the name
(``_seconds``, ``_vehicles``), ``_total`` on counters. Labels stay bounded: shards,
stations, dead-letter reasons, models, retrain triggers; never an event id. Labels known
in advance are exported at 0 from the start, so that ``rate()`` and ``increase()`` count
the first event (a series that appears at 1 has increased by nothing).

Event times are exposed as timestamps (``..._timestamp_seconds``), not ages, so that
``time() - metric`` gives the age at query time, and a replay of 2017 shows as the
event hour it has reached.

>>> registry = CollectorRegistry()
>>> families = ConsumerMetrics(registry)
>>> families.records_read.labels(shard_id="shardId-000").inc(3)
>>> registry.get_sample_value("traffic_consumer_records_read_total", {"shard_id": "shardId-000"})
3.0
"""

from __future__ import annotations

import errno
import functools
import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from core.config import Settings
from core.errors import PermanentError

log = logging.getLogger(__name__)

#: Batch durations run from a few ms (a handful of records) to seconds (2,000 records with a
#: large model on a busy machine).
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A retrain fits two forests on years of hours: seconds to minutes.
RETRAIN_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
#: Seconds: a cached forecast takes well under a millisecond, a batch-model call tens of them.
API_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Why the producer sends a PutRecords entry again (:mod:`producer.kinesis_writer`).
RETRY_REASONS = ("throttled", "failed")
#: What makes a retrain due (:mod:`training.schedule`).
RETRAIN_TRIGGERS = ("cadence", "drift")


class ConsumerMetrics:
    """What the consumer reports: throughput, errors, lag, leases, the models' recent accuracy and drift."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records_read = Counter("traffic_consumer_records_read_total", "Stream records read and processed",
                                    ["shard_id"], registry=registry)
        self.result_rows = Counter("traffic_consumer_result_rows_total", "Result rows written to S3",
                                   ["shard_id"], registry=registry)
        self.dead_letters = Counter("traffic_consumer_dead_letters_total", "Records dead-lettered, by reason",
                                    ["shard_id", "reason"], registry=registry)
        self.batch_failures = Counter("traffic_consumer_batch_failures_total",
                                      "Batches that failed and will be read again from the checkpoint",
                                      ["shard_id"], registry=registry)
        self.batch_duration = Histogram("traffic_consumer_batch_duration_seconds",
                                        "Time to process a group of batches (stage=process) and commit it (stage=commit)",
                                        ["stage"], buckets=BATCH_BUCKETS, registry=registry)
        self.behind_latest = Gauge("traffic_consumer_behind_latest_seconds",
                                   "How far the last read was behind the tip of the shard (MillisBehindLatest)",
                                   ["shard_id"], registry=registry)
        self.newest_event = Gauge("traffic_consumer_newest_event_timestamp_seconds",
                                  "Event time of the newest record processed (Unix time)", ["shard_id"], registry=registry)
        self.leases_held = Gauge("traffic_consumer_leases_held", "Shards this worker reads", registry=registry)
        self.champion_version = Gauge("traffic_consumer_champion_version",
                                      "Registry version of the batch model serving (NaN: none yet)", registry=registry)
        self.rolling_mae = Gauge("traffic_consumer_rolling_mae_vehicles",
                                 "Mean absolute error over the station's last 168 processed hours, per model",
                                 ["station_id", "model"], registry=registry)
        self.drift_detections = Counter("traffic_consumer_drift_detections_total",
                                        "Concept drift detected on a model's absolute errors",
                                        ["station_id", "model"], registry=registry)
        self.champion_version.set(float("nan"))


class ProducerMetrics:
    """What the replay producer reports: records put, calls, retries, and how far the replay has got."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records_put = Counter("traffic_producer_records_put_total", "Records the stream acknowledged",
                                   registry=registry)
        self.put_calls = Counter("traffic_producer_put_calls_total", "PutRecords calls", registry=registry)
        self.records_retried = Counter("traffic_producer_records_retried_total",
                                       "Entries of a PutRecords call sent again, by reason (throttled, failed)",
                                       ["reason"], registry=registry)
        for reason in RETRY_REASONS:
            self.records_retried.labels(reason=reason)
        self.newest_event = Gauge("traffic_producer_newest_event_timestamp_seconds",
                                  "Event time of the newest record put (Unix time)", registry=registry)


class TrainerMetrics:
    """What the retrainer reports: retrains by trigger and outcome, the champion, data drift."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.retrains = Counter("traffic_trainer_retrains_total", "Retrains, by trigger (cadence, drift)",
                                ["trigger"], registry=registry)
        self.promotions = Counter("traffic_trainer_promotions_total", "Retrains promoted to champion, by trigger",
                                  ["trigger"], registry=registry)
        for trigger in RETRAIN_TRIGGERS:
            self.retrains.labels(trigger=trigger)
            self.promotions.labels(trigger=trigger)
        self.retrain_duration = Histogram("traffic_trainer_retrain_duration_seconds", "Time to retrain and score",
                                          buckets=RETRAIN_BUCKETS, registry=registry)
        self.champion_version = Gauge("traffic_trainer_champion_version", "Registry version of the champion",
                                      registry=registry)
        self.drift_events = Counter("traffic_trainer_drift_events_seen_total",
                                    "Concept-drift events read from S3", ["model"], registry=registry)
        self.data_drift_share = Gauge("traffic_trainer_data_drift_share",
                                      "Share of input columns drifted in the last data-drift report", registry=registry)
        self.champion_version.set(float("nan"))


class ApiMetrics:
    """What ``python -m serve`` reports on its own ``/metrics``: requests, latency, what it serves from."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter("traffic_api_requests_total", "Requests answered, by route and status code",
                                ["route", "status"], registry=registry)
        self.latency = Histogram("traffic_api_request_duration_seconds", "Time to answer a request, by route",
                                 ["route"], buckets=API_BUCKETS, registry=registry)
        self.champion_version = Gauge("traffic_api_champion_version", "Registry version of the batch model served "
                                      "(NaN: none yet)", registry=registry)
        self.stations = Gauge("traffic_api_stations", "Stations with committed state loaded", registry=registry)
        self.newest_event = Gauge("traffic_api_newest_event_timestamp_seconds",
                                  "Event time of the newest hour in the committed state (Unix time)", registry=registry)
        self.refresh_failures = Counter("traffic_api_state_refresh_failures_total",
                                        "Reads of the committed state that failed (the last one kept serving)",
                                        registry=registry)
        self.champion_version.set(float("nan"))


@functools.cache
def consumer() -> ConsumerMetrics:
    """The consumer's families in the process's registry, registered on first use (only the
    components that update a family serve it)."""
    return ConsumerMetrics()


@functools.cache
def producer() -> ProducerMetrics:
    return ProducerMetrics()


@functools.cache
def trainer() -> TrainerMetrics:
    return TrainerMetrics()


@functools.cache
def api() -> ApiMetrics:
    return ApiMetrics()


def serve(settings: Settings, component: str, registry: CollectorRegistry = REGISTRY) -> int:
    """Serve ``registry`` at ``http://<address>:<port>/metrics`` from a daemon thread; returns the port.

    The port is the component's ``TRAFFIC_<COMPONENT>_METRICS_PORT`` (0: any free one). A port
    that is taken raises :class:`PermanentError` naming the variable, so the component stops
    at start with one line instead of running unobserved.
    """
    port = settings.metrics_ports[component]
    try:
        server, _ = start_http_server(port, settings.metrics_address, registry=registry)
    except OSError as exc:
        variable = f"TRAFFIC_{component.upper()}_METRICS_PORT"
        if exc.errno == errno.EADDRINUSE:
            raise PermanentError(f"the metrics port {settings.metrics_address}:{port} is taken (another {component}?): "
                                 f"set {variable} to a free port, or 0 for any") from None
        raise PermanentError(f"cannot serve metrics on {settings.metrics_address}:{port} ({variable}): {exc}") from None
    bound = server.server_port
    log.info("%s metrics on http://%s:%d/metrics", component, settings.metrics_address, bound)
    return bound
