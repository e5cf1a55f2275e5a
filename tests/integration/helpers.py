"""Helpers for integration tests: running components in-process against real servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapters import aws, model_registry
from adapters.result_store import ResultStore
from consumer import checkpoint_table
from consumer.checkpoints import CheckpointStore
from consumer.worker import Consumer
from core.config import Settings
from producer.kinesis_writer import KinesisWriter
from producer.run import replay


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll ``condition`` until it is truthy or ``timeout`` passes (then fail with ``message``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def produce(settings: Settings, records) -> None:
    replay(records, KinesisWriter(aws.client("kinesis", settings), settings.stream_name), None, show_progress=False)


def lease_owners(settings: Settings) -> dict[str, str | None]:
    """Each shard's lease holder in the checkpoint table (None when free)."""
    items = aws.client("dynamodb", settings).scan(TableName=settings.checkpoint_table, ConsistentRead=True)["Items"]
    shards = ((checkpoint_table.shard_of(settings.app_name, i), i) for i in items)
    return {shard: checkpoint_table.lease(shard, i).owner for shard, i in shards if shard is not None}


def store(settings: Settings) -> ResultStore:
    return ResultStore(aws.client("s3", settings), settings.bucket)


def consumer(settings: Settings, champion: bool = True, streaming_run=None) -> Consumer:
    s3 = aws.client("s3", settings)
    return Consumer(
        settings,
        aws.stream_reader(settings),
        ResultStore(s3, settings.bucket),
        CheckpointStore(aws.client("dynamodb", settings), s3, settings.checkpoint_table, settings.bucket, settings.app_name),
        model_registry.Champion(settings) if champion else None,
        streaming_run,
    )


def drain(c: Consumer, expected: int, timeout: float = 120) -> None:
    """Poll the consumer until it has handled ``expected`` records."""
    deadline = time.monotonic() + timeout
    while c.stats.records < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer handled {c.stats.records} of {expected} records in {timeout:.0f} s")
        if not c.poll():
            time.sleep(0.05)


class Background:
    """Run a consumer loop in a thread until stopped."""

    def __init__(self, c: Consumer) -> None:
        self.consumer = c
        self.stop = threading.Event()
        self.thread = threading.Thread(target=c.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Consumer:
        self.thread.start()
        return self.consumer

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
