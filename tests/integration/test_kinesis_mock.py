"""Kinesis semantics moto lacks, against kinesis-mock: resharding and iterator expiry."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from adapters import aws
from infra.provision import Provisioner
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
