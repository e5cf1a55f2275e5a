"""A year at 100 stations on 4 shards: objects per month and a month's DuckDB query, before and after compaction.

    python -m bench.compaction [--stations 100] [--shards 4] [--hours 8760] [--repeats 5]

The consumer at real time reads about one record per station per hour, so each shard's
batch is its stations' records of one hour, and each batch writes one object. This writes
exactly those objects (rows built by :func:`core.results.result_row`, one
:meth:`ResultStore.write_rows` per shard-hour, stations assigned to shards by the hash of
their partition key as Kinesis assigns them) to a moto server, then runs the compaction job
(:class:`monitor.compaction.Compactor`) over the closed months. Counted: objects per month
before and after. Timed: one month's query in DuckDB (httpfs, over the same S3 endpoint;
``read_parquet`` of the month's objects, an aggregate per station) on the live objects
before and on the month's generation after (the live objects stay for the grace period,
so both layouts are there at once), alternating, ``--repeats`` times each.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.machine import describe

QUERY = """SELECT station_id, count(*) AS hours, avg(abs(served_prediction - traffic_volume)) AS served_mae
FROM read_parquet({files}) GROUP BY station_id ORDER BY station_id"""


def shard_of(key: str, shards: int) -> int:
    """The shard Kinesis puts a partition key on: MD5 of the key over equal hash ranges."""
    return int(hashlib.md5(key.encode()).hexdigest(), 16) * shards >> 128


def duckdb_connection(endpoint: str):
    import duckdb
    import duckdb_extensions

    connection = duckdb.connect()
    duckdb_extensions.import_extension("httpfs", connection)
    host = endpoint.removeprefix("http://")
    for setting in (f"s3_endpoint='{host}'", "s3_use_ssl=false", "s3_url_style='path'", "s3_region='us-east-1'",
                    "s3_access_key_id='bench'", "s3_secret_access_key='bench'"):
        connection.execute(f"SET {setting}")
    return connection


def timed_query(connection, bucket: str, keys: list[str]) -> tuple[float, int]:
    files = "[" + ", ".join(f"'s3://{bucket}/{k}'" for k in keys) + "]"
    start = time.perf_counter()
    rows = connection.execute(QUERY.format(files=files)).fetchall()
    return time.perf_counter() - start, sum(r[1] for r in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--hours", type=int, default=8760)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--month", default=None, help="the month queried (default: the middle one)")
    args = parser.parse_args(argv)

    from infra.emulator import free_port, start

    with tempfile.TemporaryDirectory(prefix="bench-compaction-") as workdir:
        port = free_port()
        emulator = start(port, Path(workdir) / "moto.log")
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TRAFFIC_HOME": workdir})
        try:
            run(args, endpoint)
        finally:
            emulator.terminate()


def run(args: argparse.Namespace, endpoint: str) -> None:
    from adapters import aws
    from adapters.result_store import ResultStore
    from bench.throughput import synthetic
    from core.config import Settings
    from core.results import result_row
    from infra.provision import Provisioner
    from monitor.compaction import compactor

    settings = Settings.from_env()
    Provisioner(settings).create(with_iam=False)
    store = ResultStore(aws.client("s3", settings), settings.bucket)

    records = synthetic(args.stations * args.hours, stations=args.stations)
    batches: dict[tuple[str, int], list[dict]] = defaultdict(list)  # (hour, shard) -> rows
    for n, record in enumerate(records):
        shard = shard_of(record.station_id, args.shards)
        volume = float(record.traffic_volume)
        batches[(record.event_time.isoformat(), shard)].append(result_row(
            record, batch_prediction=volume * 0.97, online_prediction=volume * 1.02, served_prediction=volume,
            batch_model_version="1", served_bounds={"served_lower_80": volume - 250, "served_upper_80": volume + 250,
                                                    "served_lower_90": volume - 350, "served_upper_90": volume + 350},
            online_updates=n, shard_id=f"shardId-{shard:012d}", sequence_number=f"{n:056d}",
            processed_at="2026-12-01T00:00:00+00:00"))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(store.write_rows, batches.values()))
    written = time.perf_counter() - started
    before = {month: len(objects) for month, objects in store.live_objects().items()}
    months = sorted(before)
    month = args.month or months[len(months) // 2]
    live_keys = sorted(store.live_objects()[month])
    live_bytes = sum(o["Size"] for page in store.s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix=f"predictions/event_month={month}/") for o in page.get("Contents", []))

    started = time.perf_counter()
    done = compactor(settings, store).run()
    compacted_in = time.perf_counter() - started
    manifests = store.manifests()
    after = {m: len(manifests[m].files) if m in manifests else len(store.live_objects().get(m, {})) for m in months}
    generation_keys = manifests[month].files
    generation_bytes = sum(store.s3.head_object(Bucket=settings.bucket, Key=k)["ContentLength"] for k in generation_keys)

    # Within the grace period the live objects are still there: both layouts side by side.
    connection = duckdb_connection(endpoint)
    samples: dict[str, list[float]] = {"before": [], "after": []}
    counted = {}
    for _ in range(args.repeats):
        for side, keys in (("before", live_keys), ("after", generation_keys)):
            seconds, hours = timed_query(connection, settings.bucket, keys)
            samples[side].append(seconds)
            counted[side] = hours

    print(describe())
    print(f"{args.stations} stations on {args.shards} shards, {args.hours:,} hours: {len(records):,} rows in "
          f"{sum(before.values()):,} objects, written in {written:.0f} s; compacted {len(done)} closed months in "
          f"{compacted_in:.0f} s\n")
    print("| month | objects before | objects after |")
    print("|---|---:|---:|")
    for m in months:
        print(f"| {m} | {before[m]:,} | {after[m]:,} |")
    print()
    print(f"DuckDB, {month} ({counted['before']:,} rows; {len(live_keys):,} objects, {live_bytes / 1e6:.1f} MB before; "
          f"{len(generation_keys)} file(s), {generation_bytes / 1e6:.1f} MB after), {args.repeats} runs each, alternating:\n")
    print("| layout | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for side in ("before", "after"):
        values = samples[side]
        print(f"| {side} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
