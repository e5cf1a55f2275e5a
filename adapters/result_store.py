"""The S3 layout of results: Hive-style partitions by event date, Parquet files.

``s3://<bucket>/predictions/event_month=YYYY-MM/<shard>-<first sequence>.parquet``
holds result rows as the consumer writes them, one object a batch (each row also has its
``event_date``);
``s3://<bucket>/compacted/event_month=YYYY-MM/generation=<id>/part-NNNNN.parquet`` a closed
month rewritten into a few files, and ``compacted/event_month=YYYY-MM/manifest.json`` which
of a month's files to read (:mod:`core.compaction`; the readers here follow it, Athena
follows the catalog, :mod:`adapters.catalog`);
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.compaction import Manifest, Selection, resolve
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
#: Closed months rewritten into a few files (:mod:`core.compaction`, ``python -m monitor compact``).
COMPACTED_PREFIX = "compacted/"
MANIFEST_NAME = "manifest.json"

#: The result rows as stored: typed, so Athena (through the catalog, :mod:`adapters.catalog`),
#: DuckDB and pandas read times as times. ``event_time`` is the instant (UTC-adjusted);
#: ``event_utc_offset_minutes`` keeps the offset the record was sent with, so the local hour
#: (``event_time`` plus the offset) and the record itself are exactly recoverable.
ROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("station_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("event_utc_offset_minutes", pa.int16()),
        ("event_date", pa.date32()),
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
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: The rows as the consumer builds them (:func:`core.results.result_row`): times as ISO text.
_TEXT_SCHEMA = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_temporal(f.type) else f
                          for f in ROW_SCHEMA if f.name != "event_utc_offset_minutes"])


def typed(table: pa.Table) -> pa.Table:
    """``table`` in :data:`ROW_SCHEMA`: ISO-text times (the consumer's rows, or objects written
    before the columns were typed) parsed, the offset taken from ``event_time``'s text.

    >>> t = typed(pa.Table.from_pylist([{"event_time": "2017-07-01T08:00:00-05:00", "event_date": "2017-07-01",
    ...                                  "processed_at": "2026-12-01T19:41:48.123456+00:00"}], schema=_TEXT_SCHEMA))
    >>> t.column("event_time")[0].as_py().isoformat(), t.column("event_utc_offset_minutes")[0].as_py()
    ('2017-07-01T13:00:00+00:00', -300)
    >>> str(t.column("event_date")[0]), typed(t).schema == ROW_SCHEMA
    ('2017-07-01', True)
    """
    if not pa.types.is_string(table.schema.field("event_time").type):
        return table.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
    text = table.column("event_time")
    sign = pc.if_else(pc.equal(pc.utf8_slice_codeunits(text, -6, -5), "-"), -1, 1)
    minutes = pc.add(pc.multiply(pc.cast(pc.utf8_slice_codeunits(text, -5, -3), pa.int32()), 60),
                     pc.cast(pc.utf8_slice_codeunits(text, -2), pa.int32()))
    columns = {name: table.column(name) for name in table.schema.names}
    columns["event_utc_offset_minutes"] = pc.multiply(sign, minutes)
    return pa.table([columns[name].cast(field.type) for name, field in zip(ROW_SCHEMA.names, ROW_SCHEMA)],
                    schema=ROW_SCHEMA)


def rows_table(rows: Sequence[dict[str, object]]) -> pa.Table:
    """The consumer's result rows as a table in :data:`ROW_SCHEMA`."""
    return typed(pa.Table.from_pylist(list(rows), schema=_TEXT_SCHEMA))


def _concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The frames' rows together; the empty ones left out, which pandas would let change the dtypes."""
    kept = [f for f in frames if len(f)]
    if not kept:
        return frames[0] if frames else pd.DataFrame(columns=[*ROW_SCHEMA.names, PARTITION, "_key"])
    return kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)


def prediction_key(event_month: str, shard_id: str, first_sequence: str) -> str:
    return f"{PREDICTIONS_PREFIX}{PARTITION}={event_month}/{shard_id}-{first_sequence}.parquet"


def month_of(key: str) -> str:
    """The event month a prediction key is partitioned under."""
    return key.split(f"{PARTITION}=", 1)[1].split("/", 1)[0]


def generation_prefix(month: str, generation: str) -> str:
    return f"{COMPACTED_PREFIX}{PARTITION}={month}/generation={generation}/"


def generation_key(month: str, generation: str, n: int) -> str:
    return f"{generation_prefix(month, generation)}part-{n:05d}.parquet"


def manifest_key(month: str) -> str:
    """Beside the generations, never inside one: the catalog's location for a month is a
    generation's prefix, and a query reads every object there."""
    return f"{COMPACTED_PREFIX}{PARTITION}={month}/{MANIFEST_NAME}"


def dead_letter_key(shard_id: str, first_sequence: str) -> str:
    return f"{DEAD_LETTER_PREFIX}shard_id={shard_id}/{first_sequence}.jsonl"


def drift_key(event_month: str, shard_id: str, first_sequence: str) -> str:
    return f"{DRIFT_PREFIX}{PARTITION}={event_month}/{shard_id}-{first_sequence}.jsonl"


@dataclass
class ResultStore:
    s3: object
    bucket: str
    _seen: set[str] = field(default_factory=set)
    #: Manifests read, by key: (ETag, manifest).
    _manifests: dict[str, tuple[str, Manifest]] = field(default_factory=dict)

    def write_rows(self, rows: Sequence[dict[str, object]]) -> list[str]:
        """Write rows as one Parquet object per event month; returns the keys written."""
        by_month: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in rows:
            by_month[str(row["event_date"])[:7]].append(row)
        keys = []
        for event_month, group in by_month.items():
            key = prediction_key(event_month, str(group[0]["shard_id"]), str(group[0]["sequence_number"]))
            buffer = io.BytesIO()
            pq.write_table(rows_table(group), buffer, compression="zstd")
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
            pq.write_table(rows_table(rows[i : i + chunk]), buffer, compression="zstd")
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
            keys.append(key)
        return keys

    def read_history(self) -> pd.DataFrame:
        frames = [
            typed(pq.read_table(io.BytesIO(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))).to_pandas()
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
        return list(self.list_objects(prefix))

    def list_objects(self, prefix: str) -> dict[str, str]:
        """The keys under ``prefix`` with their ETags (what a compaction manifest records)."""
        objects = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            objects.update((obj["Key"], obj["ETag"]) for obj in page.get("Contents", []))
        return objects

    # -- the prediction table, month by month (core.compaction) ---------------------------

    def live_objects(self, month: str | None = None) -> dict[str, dict[str, str]]:
        """The consumer's objects (of one month, or all) by event month: key → ETag."""
        months: dict[str, dict[str, str]] = defaultdict(dict)
        prefix = PREDICTIONS_PREFIX if month is None else f"{PREDICTIONS_PREFIX}{PARTITION}={month}/"
        for key, etag in self.list_objects(prefix).items():
            if key.endswith(".parquet") and f"{PARTITION}=" in key:
                months[month_of(key)][key] = etag
        return dict(months)

    def manifests(self) -> dict[str, Manifest]:
        """Each compacted month's current manifest; one read again only when its ETag changed
        (the retrainer lists them at every refresh, a compaction rewrites one a month)."""
        listed = {k: e for k, e in self.list_objects(COMPACTED_PREFIX).items() if k.endswith(MANIFEST_NAME)}
        stale = [k for k, etag in listed.items() if self._manifests.get(k, (None,))[0] != etag]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for key, manifest in zip(stale, pool.map(self.read_manifest_object, stale)):
                self._manifests[key] = (listed[key], manifest)
        self._manifests = {k: v for k, v in self._manifests.items() if k in listed}
        return {m.month: m for _, m in self._manifests.values()}

    def read_manifest_object(self, key: str) -> Manifest:
        return Manifest.from_json(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def manifest(self, month: str) -> Manifest | None:
        """``month``'s current manifest, None before its first compaction."""
        try:
            return self.read_manifest_object(manifest_key(month))
        except self.s3.exceptions.NoSuchKey:
            return None

    def selections(self) -> dict[str, Selection]:
        """What to read for each month, so that every hour is read once (:func:`core.compaction.resolve`).

        Manifests are listed before the live objects: a compaction that switches between
        the two listings is then seen either not at all or with every live object it absorbed."""
        manifests = self.manifests()
        live = self.live_objects()
        return {month: resolve(live.get(month, {}), manifests.get(month)) for month in sorted({*live, *manifests})}

    def read_selection(self, selection: Selection) -> pd.DataFrame:
        """One month's rows: the generation's, less those written again since, then the live ones."""
        compacted = self.read_prediction_objects(selection.compacted)
        live = self.read_prediction_objects(selection.live)
        if selection.superseding:
            again = set(live[live["_key"].isin(selection.superseding)]["event_id"])
            compacted = compacted[~compacted["event_id"].isin(again)]
        return _concat([compacted, live])

    def read_prediction_objects(self, keys: Iterable[str]) -> pd.DataFrame:
        keys = list(keys)
        # GETs are latency-bound: a few in flight at once read a partition set much faster.
        with ThreadPoolExecutor(max_workers=8) as pool:
            frames = list(pool.map(self._read_prediction_object, keys))
        if not frames:
            return pd.DataFrame(columns=[*ROW_SCHEMA.names, PARTITION, "_key"])
        return pd.concat(frames, ignore_index=True)

    def _read_prediction_object(self, key: str) -> pd.DataFrame:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        frame = typed(pq.read_table(io.BytesIO(body))).to_pandas()
        frame[PARTITION] = month_of(key)
        frame["_key"] = key
        return frame

    def read_predictions(self, attempts: int = 3) -> pd.DataFrame:
        """All result rows, each hour once, in (station, event time) order.

        An object can vanish between the listing and its read only if this read took longer
        than the compaction's grace period; the read then starts again from a new listing."""
        for attempt in range(attempts):
            try:
                frames = [self.read_selection(selection) for selection in self.selections().values()]
                break
            except self.s3.exceptions.NoSuchKey:
                if attempt == attempts - 1:
                    raise
        frame = _concat(frames).drop(columns="_key")
        return frame.sort_values(["station_id", "event_time"], kind="stable").reset_index(drop=True)

    def read_new_predictions(self) -> pd.DataFrame:
        """Rows of objects not read before by this store (the retrainer's corpus, which keeps
        one row per event id): after a month's compaction its generation's files are new
        objects, so rows already read come again."""
        fresh = [k for selection in self.selections().values() for k in (*selection.compacted, *selection.live)
                 if k not in self._seen]
        frame = self.read_prediction_objects(fresh)
        self._seen.update(fresh)
        return frame.drop(columns="_key")

    # -- compaction's writes (monitor.compaction) --------------------------------------------

    def write_generation(self, month: str, generation: str, table: pa.Table, rows_per_file: int) -> list[str]:
        """``table`` as the files of a new generation of ``month``; returns their keys."""
        keys = []
        for n, start in enumerate(range(0, max(table.num_rows, 1), rows_per_file)):
            key = generation_key(month, generation, n)
            buffer = io.BytesIO()
            pq.write_table(table.slice(start, rows_per_file), buffer, compression="zstd")
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
            keys.append(key)
        return keys

    def write_manifest(self, manifest: Manifest) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=manifest_key(manifest.month), Body=manifest.to_json())

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys``, one DeleteObject each (a few in flight): IAM scopes each to its prefix."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda key: self.s3.delete_object(Bucket=self.bucket, Key=key), keys))

    def read_dead_letters(self) -> list[dict[str, object]]:
        letters = []
        for key in self.list_keys(DEAD_LETTER_PREFIX):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
            letters.extend(json.loads(line) for line in body.splitlines() if line)
        return letters
