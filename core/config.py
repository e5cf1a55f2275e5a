"""Configuration, read from the environment in exactly one place.

Every component builds a :class:`Settings` with :meth:`Settings.from_env` and passes it
down; nothing else in the project reads ``os.environ`` for its own configuration.
Which AWS (real, LocalStack or the embedded emulator) is used is decided by the
standard boto3 variables alone (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``,
``AWS_PROFILE``, ...), which boto3 reads itself, so no endpoint appears here.

>>> s = Settings.from_env({"TRAFFIC_STREAM_NAME": "s", "TRAFFIC_RETRAIN_EVERY_DAYS": "7"})
>>> s.stream_name, s.retrain_every_days
('s', 7.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

#: The variables this module reads, with their defaults. Tests check that every
#: variable the compose file sets is one of these or a standard AWS/MLflow one.
ENVIRONMENT = {
    "TRAFFIC_HOME": ".traffic-stream",
    "TRAFFIC_DATA": "",
    "TRAFFIC_CACHE_DIR": "~/.cache/traffic-stream",
    "TRAFFIC_STATION_ID": "301",
    "TRAFFIC_STREAM_NAME": "traffic-stream-events",
    "TRAFFIC_STREAM_SHARDS": "1",
    "TRAFFIC_BUCKET": "traffic-stream-predictions",
    "TRAFFIC_MLFLOW_BUCKET": "traffic-stream-mlflow",
    "TRAFFIC_CHECKPOINT_TABLE": "traffic-stream-checkpoints",
    "TRAFFIC_GLUE_CATALOG": "1",
    "TRAFFIC_GLUE_DATABASE": "traffic_stream",
    "TRAFFIC_GLUE_TABLE": "predictions",
    "TRAFFIC_COMPACT_GRACE_SECONDS": "3600",
    "TRAFFIC_APP_NAME": "traffic-stream-consumer",
    "TRAFFIC_EXPERIMENT": "traffic-stream",
    "TRAFFIC_MODEL_NAME": "traffic-volume-batch",
    "TRAFFIC_RETRAIN_EVERY_DAYS": "10",
    "TRAFFIC_HOLDOUT_DAYS": "7",
    "TRAFFIC_PROMOTION_TOLERANCE": "0.05",
    "TRAFFIC_DRIFT_RETRAIN": "0",
    "TRAFFIC_DRIFT_SETTLE_HOURS": "24",
    "TRAFFIC_DRIFT_MIN_SPACING_DAYS": "2",
    "TRAFFIC_BATCH_SIZE": "2000",
    "TRAFFIC_BATCH_TREES": "500",
    "TRAFFIC_POLL_SECONDS": "0.2",
    "TRAFFIC_CHAMPION_REFRESH_SECONDS": "10",
    "TRAFFIC_LEASE_SECONDS": "10",
    "TRAFFIC_REPLAY_SPEED": "1",
    "TRAFFIC_RESOURCE_PREFIX": "traffic-stream",
    "TRAFFIC_AWS_CALL_LOG": "",
    "TRAFFIC_METRICS_ADDRESS": "127.0.0.1",
    "TRAFFIC_PRODUCER_METRICS_PORT": "9101",
    "TRAFFIC_CONSUMER_METRICS_PORT": "9102",
    "TRAFFIC_TRAINER_METRICS_PORT": "9103",
    "TRAFFIC_SCRAPE_SECONDS": "15",
    "TRAFFIC_API_ADDRESS": "127.0.0.1",
    "TRAFFIC_API_PORT": "8000",
    "TRAFFIC_API_REFRESH_SECONDS": "1",
    "MLFLOW_TRACKING_URI": "",
    "AWS_REGION": "",
    "AWS_DEFAULT_REGION": "us-east-1",
}


#: The components that serve Prometheus metrics, each on its ``TRAFFIC_<COMPONENT>_METRICS_PORT``.
METRICS_COMPONENTS = ("producer", "consumer", "trainer")


def _port(value: str, component: str, name: str | None = None) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        name = name or f"TRAFFIC_{component.upper()}_METRICS_PORT"
        raise ValueError(f"{name} must be a port (0 to 65535), not {value}")
    return port


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false, on/off), not {value!r}")


@dataclass(frozen=True)
class Settings:
    home: Path
    data_path: str
    cache_dir: Path
    station_id: str
    stream_name: str
    stream_shards: int
    bucket: str
    mlflow_bucket: str
    checkpoint_table: str
    #: The Glue Data Catalog's database and table over the predictions (:mod:`adapters.catalog`);
    #: ``glue_catalog`` off where the endpoint has no Glue (LocalStack's community edition).
    glue_catalog: bool
    glue_database: str
    glue_table: str
    #: How long what a compaction replaced stays readable after the switch (:mod:`monitor.compaction`):
    #: longer than any read of the bucket takes.
    compact_grace_seconds: float
    app_name: str
    experiment: str
    model_name: str
    retrain_every_days: float
    holdout_days: float
    #: A retrained model is promoted unless its holdout MAE exceeds the champion's by more than this fraction.
    promotion_tolerance: float
    #: Whether a drift in the batch model's errors brings the next retrain forward
    #: (:mod:`training.schedule`), how many event hours after the detection, and at most how often.
    #: Off by default: on 2016 it made the two weeks after injected closures worse (docs/models.md).
    drift_retrain: bool
    drift_settle_hours: float
    drift_min_spacing_days: float
    batch_size: int
    #: Trees in each member of the batch model (:func:`core.batch_model.sized`): accuracy against speed.
    batch_trees: int
    poll_seconds: float
    champion_refresh_seconds: float
    lease_seconds: float
    replay_speed: str
    resource_prefix: str
    #: A file to which every AWS call is appended as its IAM action (:mod:`infra.call_log`); empty: none.
    aws_call_log: str
    #: Where each component serves its Prometheus metrics (:mod:`adapters.metrics`): the address
    #: to bind (``0.0.0.0`` in containers), and a port per component (0: any free port, logged).
    metrics_address: str
    metrics_ports: dict[str, int]
    #: How often the native Prometheus (:mod:`infra.prometheus_server`) scrapes the components.
    scrape_seconds: float
    #: Where ``python -m serve`` listens (its metrics on the same port, ``/metrics``), and how
    #: often it looks for newer committed state (:mod:`adapters.committed_state`).
    api_address: str
    api_port: int
    api_refresh_seconds: float
    tracking_uri: str
    region: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            value = env.get(name, "")
            return value if value != "" else ENVIRONMENT[name]

        home = Path(get("TRAFFIC_HOME")).expanduser().resolve()
        tracking_uri = get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        return cls(
            home=home,
            data_path=get("TRAFFIC_DATA"),
            cache_dir=Path(get("TRAFFIC_CACHE_DIR")).expanduser(),
            station_id=get("TRAFFIC_STATION_ID"),
            stream_name=get("TRAFFIC_STREAM_NAME"),
            stream_shards=int(get("TRAFFIC_STREAM_SHARDS")),
            bucket=get("TRAFFIC_BUCKET"),
            mlflow_bucket=get("TRAFFIC_MLFLOW_BUCKET"),
            checkpoint_table=get("TRAFFIC_CHECKPOINT_TABLE"),
            glue_catalog=_flag(get("TRAFFIC_GLUE_CATALOG"), "TRAFFIC_GLUE_CATALOG"),
            glue_database=get("TRAFFIC_GLUE_DATABASE"),
            glue_table=get("TRAFFIC_GLUE_TABLE"),
            compact_grace_seconds=float(get("TRAFFIC_COMPACT_GRACE_SECONDS")),
            app_name=get("TRAFFIC_APP_NAME"),
            experiment=get("TRAFFIC_EXPERIMENT"),
            model_name=get("TRAFFIC_MODEL_NAME"),
            retrain_every_days=float(get("TRAFFIC_RETRAIN_EVERY_DAYS")),
            holdout_days=float(get("TRAFFIC_HOLDOUT_DAYS")),
            promotion_tolerance=float(get("TRAFFIC_PROMOTION_TOLERANCE")),
            drift_retrain=_flag(get("TRAFFIC_DRIFT_RETRAIN"), "TRAFFIC_DRIFT_RETRAIN"),
            drift_settle_hours=float(get("TRAFFIC_DRIFT_SETTLE_HOURS")),
            drift_min_spacing_days=float(get("TRAFFIC_DRIFT_MIN_SPACING_DAYS")),
            batch_size=int(get("TRAFFIC_BATCH_SIZE")),
            batch_trees=int(get("TRAFFIC_BATCH_TREES")),
            poll_seconds=float(get("TRAFFIC_POLL_SECONDS")),
            champion_refresh_seconds=float(get("TRAFFIC_CHAMPION_REFRESH_SECONDS")),
            lease_seconds=float(get("TRAFFIC_LEASE_SECONDS")),
            replay_speed=get("TRAFFIC_REPLAY_SPEED"),
            resource_prefix=get("TRAFFIC_RESOURCE_PREFIX"),
            aws_call_log=get("TRAFFIC_AWS_CALL_LOG"),
            metrics_address=get("TRAFFIC_METRICS_ADDRESS"),
            metrics_ports={component: _port(get(f"TRAFFIC_{component.upper()}_METRICS_PORT"), component)
                           for component in METRICS_COMPONENTS},
            scrape_seconds=float(get("TRAFFIC_SCRAPE_SECONDS")),
            api_address=get("TRAFFIC_API_ADDRESS"),
            api_port=_port(get("TRAFFIC_API_PORT"), "api", "TRAFFIC_API_PORT"),
            api_refresh_seconds=float(get("TRAFFIC_API_REFRESH_SECONDS")),
            tracking_uri=tracking_uri,
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
        )

    def __post_init__(self) -> None:
        if self.batch_trees < 1:
            raise ValueError(f"TRAFFIC_BATCH_TREES must be at least 1, not {self.batch_trees}")
        if self.scrape_seconds < 0.001:
            raise ValueError(f"TRAFFIC_SCRAPE_SECONDS must be at least 0.001, not {self.scrape_seconds:g}")
        if self.holdout_days > self.retrain_every_days:
            # The champion was fitted on everything up to the previous retrain: a longer
            # holdout would score it on hours it has seen, and the candidate would lose.
            raise ValueError(
                f"TRAFFIC_HOLDOUT_DAYS ({self.holdout_days:g}) must not exceed TRAFFIC_RETRAIN_EVERY_DAYS "
                f"({self.retrain_every_days:g}): the champion would be scored on hours it was fitted on"
            )

    def replace(self, **changes: object) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)  # type: ignore[arg-type]
