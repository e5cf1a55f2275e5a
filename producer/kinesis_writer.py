"""PutRecords within Kinesis limits, retrying only the entries that failed.

A PutRecords call may succeed in part: throttled or failed entries come back with an
``ErrorCode`` while the others are stored. Only those entries are sent again, after a
jittered exponential backoff, a bounded number of times; whole-call failures (5xx,
connection resets) are retried by botocore's standard retry mode first.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters.metrics import ProducerMetrics
from adapters.metrics import producer as producer_metrics

log = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024


class PutFailed(RuntimeError):
    """Some entries were still refused after every retry."""


@dataclass
class PutStats:
    calls: int = 0
    records: int = 0
    retried_entries: int = 0
    throttled_entries: int = 0
    #: The highest sequence number stored per shard: where a consumer is done with this replay.
    last_sequence: dict[str, int] = field(default_factory=dict)


def chunks(entries: Sequence[dict]) -> list[list[dict]]:
    """Split entries into calls of at most 500 records and 5 MiB (data plus partition keys)."""
    calls: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["Data"]) + len(entry["PartitionKey"].encode("utf-8"))
        if entry_size > MAX_BYTES_PER_RECORD:
            raise ValueError(f"a record of {entry_size} bytes exceeds Kinesis's 1 MiB limit")
        if current and (len(current) == MAX_RECORDS_PER_CALL or size + entry_size > MAX_BYTES_PER_CALL):
            calls.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        calls.append(current)
    return calls


class KinesisWriter:
    def __init__(
        self,
        kinesis,
        stream_name: str,
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.kinesis = kinesis
        self.metrics = metrics or producer_metrics()
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.stats = PutStats()

    def put(self, entries: Sequence[dict]) -> None:
        for call in chunks(entries):
            self._put_call(call)

    def _put_call(self, entries: list[dict]) -> None:
        pending = entries
        for attempt in range(1, self.max_attempts + 1):
            response = self.kinesis.put_records(StreamName=self.stream_name, Records=pending)
            self.stats.calls += 1
            self.metrics.put_calls.inc()
            failed = [e for e, r in zip(pending, response["Records"], strict=True) if "ErrorCode" in r]
            for r in response["Records"]:
                if "SequenceNumber" in r:
                    shard, sequence = r["ShardId"], int(r["SequenceNumber"])
                    self.stats.last_sequence[shard] = max(sequence, self.stats.last_sequence.get(shard, 0))
            self.stats.records += len(pending) - len(failed)
            self.metrics.records_put.inc(len(pending) - len(failed))
            if not failed:
                return
            codes = [r["ErrorCode"] for r in response["Records"] if "ErrorCode" in r]
            throttled = sum(c == "ProvisionedThroughputExceededException" for c in codes)
            self.stats.retried_entries += len(failed)
            self.stats.throttled_entries += throttled
            self.metrics.records_retried.labels(reason="throttled").inc(throttled)
            self.metrics.records_retried.labels(reason="failed").inc(len(failed) - throttled)
            delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311
            log.warning(
                "PutRecords attempt %d: %d of %d entries failed (%s); retrying them in %.2f s",
                attempt, len(failed), len(pending), ", ".join(sorted(set(codes))), delay,
            )
            self.sleep(delay)
            pending = failed
        raise PutFailed(f"{len(pending)} entries still failing after {self.max_attempts} attempts")
