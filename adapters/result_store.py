"""The S3 layout of results: Hive-style partitions by event date, Parquet files.

``s3://<bucket>/predictions/event_month=YYYY-MM/<shard>-<first sequence>.parquet``
holds result rows (readable by Athena, DuckDB or pandas with hive partitioning; each row
also has its ``event_date``), and
``s3://<bucket>/dead-letters/shard_id=<shard>/<first sequence>.jsonl`` the records that
could not be used, each with its reason and raw payload, and
``s3://<bucket>/drift/event_month=YYYY-MM/<shard>-<first sequence>.jsonl`` the concept-drift
events the stream detected (:mod:`core.drift`), which the retrainer reads.

Keys are derived from the first sequence number of what they hold, so writing the same
batch again after a crash replaces objects instead of adding new ones. Partitions are by
month, not by day: a consumer catching up reads weeks of event time in one batch, and one
object per day per batch made 21 small PUTs of each 2,000-record batch (measured at 16
shards, where they took a third of the consumer's time).
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.drift import DriftEvent
from core.processing import DeadLetter
from core.state_codec import SUFFIX

PREDICTIONS_PREFIX = "predictions/"
HISTORY_PREFIX = "history/"
#: The stations' state (lag history and online model) after the initial training data,
#: from which a consumer starts a shard that has no checkpoint yet.
SEED_KEY = f"{HISTORY_PREFIX}online-seed{SUFFIX}"
DEAD_LETTER_PREFIX = "dead-letters/"
DRIFT_PREFIX = "drift/"
PARTITION = "event_month"

ROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("station_id", pa.string()),
        ("event_time", pa.string()),
        ("event_date", pa.string()),
        ("traffic_volume", pa.int64()),
        ("batch_prediction", pa.float64()),
        ("online_prediction", pa.float64()),
        ("served_prediction", pa.float64()),
        ("served_lower_80", pa.float64()),
        ("served_upper_80", pa.float64()),
        ("served_lower_90", pa.float64()),
        ("served_upper_90", pa.float64()),
        ("batch_model_version", pa.string()),
        ("online_updates", pa.int64()),
        ("temp", pa.float64()),
        ("rain_1h", pa.float64()),
        ("snow_1h", pa.float64()),
        ("clouds_all", pa.int64()),
        ("weather", pa.string()),
        ("holiday", pa.string()),
        ("shard_id", pa.string()),
        ("sequence_number", pa.string()),
        ("processed_at", pa.string()),
    ]
)


def prediction_key(event_month: str, shard_id: str, first_sequence: str) -> str:
    return f"{PREDICTIONS_PREFIX}{PARTITION}={event_month}/{shard_id}-{first_sequence}.parquet"


def dead_letter_key(shard_id: str, first_sequence: str) -> str:
    return f"{DEAD_LETTER_PREFIX}shard_id={shard_id}/{first_sequence}.jsonl"


def drift_key(event_month: str, shard_id: str, first_sequence: str) -> str:
    return f"{DRIFT_PREFIX}{PARTITION}={event_month}/{shard_id}-{first_sequence}.jsonl"


@dataclass
class ResultStore:
    s3: object
    bucket: str
    _seen: set[str] = field(default_factory=set)

    def write_rows(self, rows: Sequence[dict[str, object]]) -> list[str]:
        """Write rows as one Parquet object per event month; returns the keys written."""
        by_month: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in rows:
            by_month[str(row["event_date"])[:7]].append(row)
        keys = []
        for event_month, group in by_month.items():
            key = prediction_key(event_month, str(group[0]["shard_id"]), str(group[0]["sequence_number"]))
            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(group, schema=ROW_SCHEMA), buffer, compression="zstd")
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
            keys.append(key)
        return keys

    def write_dead_letters(self, letters: Sequence[DeadLetter], recorded_at: str) -> str | None:
        if not letters:
            return None
        key = dead_letter_key(letters[0].shard_id, letters[0].sequence_number)
        body = "".join(json.dumps(d.as_dict(recorded_at)) + "\n" for d in letters)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"))
        return key

    def write_drift_events(self, events: Sequence[DriftEvent], processed_at: str) -> list[str]:
        """Write a batch's drift events as one JSON-lines object per event month; returns the keys."""
        by_month: dict[str, list[DriftEvent]] = defaultdict(list)
        for event in events:
            by_month[event.event_time[:7]].append(event)
        keys = []
        for event_month, group in by_month.items():
            key = drift_key(event_month, group[0].shard_id, group[0].sequence_number)
            body = "".join(json.dumps(e.as_dict(processed_at)) + "\n" for e in group)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"))
            keys.append(key)
        return keys

    def read_drift_events(self, keys: Iterable[str] | None = None) -> list[dict[str, object]]:
        """The drift events of ``keys`` (default: all), in event-time order."""
        events = []
        for key in self.list_keys(DRIFT_PREFIX) if keys is None else keys:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
            events.extend(json.loads(line) for line in body.splitlines() if line)
        return sorted(events, key=lambda e: (str(e["event_time"]), str(e["station_id"]), str(e["model"])))

    def write_history(self, rows: Sequence[dict[str, object]], chunk: int = 20_000) -> list[str]:
        """Store the rows a model was first trained on, so retraining needs only the bucket."""
        keys = []
        for i in range(0, len(rows), chunk):
            key = f"{HISTORY_PREFIX}part-{i // chunk:05d}.parquet"
            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(list(rows[i : i + chunk]), schema=ROW_SCHEMA), buffer, compression="zstd")
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
            keys.append(key)
        return keys

    def read_history(self) -> pd.DataFrame:
        frames = [
            pq.read_table(io.BytesIO(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())).to_pandas()
            for key in self.list_keys(HISTORY_PREFIX)
            if key.endswith(".parquet")
        ]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_SCHEMA.names)

    def write_seed(self, blob: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=SEED_KEY, Body=blob)

    def read_seed(self) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=SEED_KEY)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def read_prediction_objects(self, keys: Iterable[str]) -> pd.DataFrame:
        keys = list(keys)
        # GETs are latency-bound: a few in flight at once read a partition set much faster.
        with ThreadPoolExecutor(max_workers=8) as pool:
            frames = list(pool.map(self._read_prediction_object, keys))
        if not frames:
            return pd.DataFrame(columns=[*ROW_SCHEMA.names, PARTITION])
        return pd.concat(frames, ignore_index=True)

    def _read_prediction_object(self, key: str) -> pd.DataFrame:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        frame = pq.read_table(io.BytesIO(body)).to_pandas()
        frame[PARTITION] = key.split(f"{PARTITION}=", 1)[1].split("/", 1)[0]
        return frame

    def read_predictions(self) -> pd.DataFrame:
        """All result rows in the bucket, in event-time order."""
        frame = self.read_prediction_objects(self.list_keys(PREDICTIONS_PREFIX))
        return frame.sort_values(["station_id", "event_time"], kind="stable").reset_index(drop=True)

    def read_new_predictions(self) -> pd.DataFrame:
        """Rows of objects not read before by this store (for followers and the retrainer)."""
        fresh = [k for k in self.list_keys(PREDICTIONS_PREFIX) if k not in self._seen]
        self._seen.update(fresh)
        return self.read_prediction_objects(fresh)

    def read_dead_letters(self) -> list[dict[str, object]]:
        letters = []
        for key in self.list_keys(DEAD_LETTER_PREFIX):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
            letters.extend(json.loads(line) for line in body.splitlines() if line)
        return letters
