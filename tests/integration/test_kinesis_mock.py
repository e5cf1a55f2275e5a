"""Kinesis semantics moto lacks, against kinesis-mock: resharding (one consumer, and two
lease-sharing workers) and iterator expiry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from adapters import aws, model_registry
from core import synthetic
from core.processing import RawRecord, process_batch
from core.schema import encode
from infra.provision import Provisioner
from tests.conftest import ROOT
from tests.integration import helpers
from tests.kinesis_mock import kinesis_mock

pytestmark = [pytest.mark.integration, pytest.mark.kinesis_mock]


@pytest.fixture
def kinesis_settings(settings, tmp_path, monkeypatch):
    with kinesis_mock(tmp_path / "kinesis-mock") as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", endpoint)
        Provisioner(settings).create(with_iam=False)
        yield settings


def test_a_split_shard_is_read_parent_before_children_without_loss(kinesis_settings, synthetic_records):
    settings = kinesis_settings
    kinesis = aws.client("kinesis", settings)
    records = synthetic_records[:3000]
    helpers.produce(settings, records[:1500])
    consumer = helpers.consumer(settings, champion=False)
    helpers.drain(consumer, 400)  # part of the parent read

    parent = kinesis.list_shards(StreamName=settings.stream_name)["Shards"][0]
    low, high = int(parent["HashKeyRange"]["StartingHashKey"]), int(parent["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=settings.stream_name, ShardToSplit=parent["ShardId"],
                        NewStartingHashKey=str((low + high) // 2))
    helpers.wait_until(
        lambda: kinesis.describe_stream_summary(StreamName=settings.stream_name)["StreamDescriptionSummary"][
            "StreamStatus"] == "ACTIVE", 30, message="the split to finish")
    helpers.produce(settings, records[1500:])
    helpers.drain(consumer, 3000, timeout=300)

    shards = kinesis.list_shards(StreamName=settings.stream_name)["Shards"]
    assert len(shards) == 3 and consumer.cursors[parent["ShardId"]].finished
    rows = helpers.store(settings).read_predictions()
    assert len(rows) == 3000 and rows["event_id"].is_unique
    assert helpers.store(settings).read_dead_letters() == []  # nothing read out of order
    # Event order was kept across the split: the online model learned hour after hour.
    assert rows["online_updates"].tolist() == list(range(1, 3001))
    # One partition key: the parent's records, then those of the one child its hash key maps to.
    children = {s["ShardId"] for s in shards if s.get("ParentShardId") == parent["ShardId"]}
    used = list(dict.fromkeys(rows["shard_id"]))
    assert used[0] == parent["ShardId"] and len(used) == 2 and used[1] in children


@pytest.mark.slow
def test_an_expired_iterator_is_renewed_from_the_checkpoint(kinesis_settings, synthetic_records):
    settings = kinesis_settings
    kinesis = aws.client("kinesis", settings)
    records = synthetic_records[:600]
    helpers.produce(settings, records[:300])
    consumer = helpers.consumer(settings, champion=False)
    helpers.drain(consumer, 300)
    cursor = next(iter(consumer.cursors.values()))
    held = cursor.iterator
    assert held is not None

    def expired() -> bool:
        try:
            kinesis.get_records(ShardIterator=held, Limit=1)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "ExpiredIteratorException"
        return False

    started = time.monotonic()
    helpers.wait_until(expired, 400, interval=5, message="kinesis-mock to expire the iterator (300 s)")
    print(f"\niterator expired after {time.monotonic() - started:.0f} s of waiting")
    helpers.produce(settings, records[300:])
    helpers.drain(consumer, 600)
    rows = helpers.store(settings).read_predictions()
    assert len(rows) == 600 and rows["event_id"].is_unique
    assert rows["online_updates"].tolist() == list(range(1, 601))


@pytest.mark.slow
def test_two_workers_reshard_while_running_without_loss(settings, synthetic_records, tmp_path, monkeypatch):
    """A split while two lease-sharing worker processes read: children after parents, exactly once."""
    monkeypatch.setenv("TRAFFIC_LEASE_SECONDS", "3")
    monkeypatch.setenv("TRAFFIC_BATCH_SIZE", "50")
    monkeypatch.setenv("TRAFFIC_STREAM_SHARDS", "2")
    settings = settings.replace(stream_shards=2, lease_seconds=3.0, batch_size=50)
    records = synthetic.many_stations(synthetic_records[:400], 6)
    with kinesis_mock(tmp_path / "kinesis-mock") as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", endpoint)
        Provisioner(settings).create(with_iam=False)
        model_registry.connect(settings)  # MLflow's database once, not raced by the workers
        kinesis = aws.client("kinesis", settings)
        helpers.produce(settings, records[: len(records) // 2])
        workers = [subprocess.Popen([sys.executable, "-m", "consumer", "--no-tracking", "--worker-id", name], cwd=ROOT,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=open(tmp_path / f"{name}.log", "wb"),
                                    stderr=subprocess.STDOUT) for name in ("w1", "w2")]
        try:
            helpers.wait_until(lambda: {o for o in helpers.lease_owners(settings).values() if o} == {"w1", "w2"}, 120, 0.2,
                               "both workers to hold a lease")
            store = helpers.store(settings)
            helpers.wait_until(lambda: len(store.read_predictions()) >= 300, 120, 0.5, "some records predicted")
            parent = max(kinesis.list_shards(StreamName=settings.stream_name)["Shards"],
                         key=lambda s: int(s["HashKeyRange"]["EndingHashKey"]) - int(s["HashKeyRange"]["StartingHashKey"]))
            low, high = int(parent["HashKeyRange"]["StartingHashKey"]), int(parent["HashKeyRange"]["EndingHashKey"])
            kinesis.split_shard(StreamName=settings.stream_name, ShardToSplit=parent["ShardId"],
                                NewStartingHashKey=str((low + high) // 2))
            helpers.wait_until(lambda: kinesis.describe_stream_summary(StreamName=settings.stream_name)[
                "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 30, message="the split to finish")
            helpers.produce(settings, records[len(records) // 2 :])
            helpers.wait_until(lambda: len(store.read_predictions()) >= len(records), 240, 1.0, "every record predicted")
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            assert all(worker.wait(60) == 0 for worker in workers)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
        shards = kinesis.list_shards(StreamName=settings.stream_name)["Shards"]

    rows = store.read_predictions()
    assert len(rows) == len(records) and rows["event_id"].is_unique
    assert store.read_dead_letters() == []  # nothing read out of order or twice
    children = {s["ShardId"] for s in shards if s.get("ParentShardId") == parent["ShardId"]}
    assert len(children) == 2
    moved = rows[rows["shard_id"].isin(children)]
    assert len(moved) > 0
    for station, after in moved.groupby("station_id"):
        before = rows[(rows["station_id"] == station) & (rows["shard_id"] == parent["ShardId"])]
        assert before.empty or before["event_time"].max() < after["event_time"].min()  # parent first
    # Every online prediction equals an uninterrupted single-process run's: each station's model
    # moved with its records, across workers and from parent to child, and learned each hour once.
    uninterrupted = process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records)], {}, None, "t").rows
    expected = {r["event_id"]: r["online_prediction"] for r in uninterrupted}
    assert dict(zip(rows["event_id"], rows["online_prediction"])) == expected
