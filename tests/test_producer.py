from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from adapters.metrics import ProducerMetrics
from producer.kinesis_writer import MAX_BYTES_PER_CALL, KinesisWriter, PutFailed, chunks
from producer.replay import offsets, parse_speed
from producer.run import Progress, after, replay
from tests.test_processing import hours


def entry(size: int, key: str = "301") -> dict:
    return {"Data": b"x" * size, "PartitionKey": key}


def test_chunks_respect_record_count_and_bytes():
    assert [len(c) for c in chunks([entry(10)] * 1201)] == [500, 500, 201]
    big = [entry(900 * 1024)] * 12
    calls = chunks(big)
    assert all(sum(len(e["Data"]) + 3 for e in c) <= MAX_BYTES_PER_CALL for c in calls)
    assert sum(len(c) for c in calls) == 12
    with pytest.raises(ValueError, match="1 MiB"):
        chunks([entry(1024 * 1024)])


class FlakyKinesis:
    """Fails the entries it is told to, the first time each is sent (a partial failure)."""

    def __init__(self, fail_first: set[bytes]):
        self.fail_first = set(fail_first)
        self.stored: list[bytes] = []
        self.calls: list[int] = []

    def put_records(self, StreamName, Records):
        self.calls.append(len(Records))
        out = []
        for r in Records:
            if r["Data"] in self.fail_first:
                self.fail_first.discard(r["Data"])
                out.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"})
            else:
                self.stored.append(r["Data"])
                out.append({"SequenceNumber": str(len(self.stored)), "ShardId": "shardId-0"})
        return {"FailedRecordCount": sum("ErrorCode" in o for o in out), "Records": out}


def test_only_failed_entries_are_retried():
    data = [f"r{i}".encode() for i in range(10)]
    kinesis = FlakyKinesis({data[2], data[7]})
    delays = []
    registry = CollectorRegistry()
    writer = KinesisWriter(kinesis, "s", sleep=delays.append, metrics=ProducerMetrics(registry))
    writer.put([{"Data": d, "PartitionKey": "k"} for d in data])
    assert sorted(kinesis.stored) == sorted(data) and len(kinesis.stored) == 10
    assert kinesis.calls == [10, 2]
    assert writer.stats.retried_entries == 2 and writer.stats.throttled_entries == 2
    assert len(delays) == 1 and 0 <= delays[0] <= writer.base_delay
    sample = registry.get_sample_value
    assert (sample("traffic_producer_records_put_total"), sample("traffic_producer_put_calls_total")) == (10, 2)
    assert sample("traffic_producer_records_retried_total", {"reason": "throttled"}) == 2
    assert sample("traffic_producer_records_retried_total", {"reason": "failed"}) == 0


def test_retries_are_bounded():
    class AlwaysThrottled(FlakyKinesis):
        def put_records(self, StreamName, Records):
            return {"Records": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"} for _ in Records]}

    registry = CollectorRegistry()
    writer = KinesisWriter(AlwaysThrottled(set()), "s", max_attempts=3, sleep=lambda s: None,
                           metrics=ProducerMetrics(registry))
    with pytest.raises(PutFailed, match="after 3 attempts"):
        writer.put([entry(5)])
    assert registry.get_sample_value("traffic_producer_records_retried_total", {"reason": "failed"}) == 3
    assert registry.get_sample_value("traffic_producer_records_put_total") == 0


def test_speed_and_schedule():
    assert parse_speed("max") is None and parse_speed("3600") == 3600.0
    with pytest.raises(ValueError):
        parse_speed("0")
    t = [datetime(2017, 1, 1) + timedelta(hours=h) for h in (0, 1, 2, 400)]
    assert offsets(t, 1.0, 1.0) == [0.0, 3600.0, 7200.0, 10800.0]  # real time: one record an hour
    assert offsets(t, 1.0, 1000.0)[-1] == 400 * 3600.0


def test_replay_paces_by_event_time_and_resumes(tmp_path):
    records = hours(6)
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    kinesis = FlakyKinesis(set())
    progress = Progress(tmp_path / "progress.json")
    summary = replay(records[:4], KinesisWriter(kinesis, "s"), 3600.0, progress, show_progress=False,
                     clock=lambda: now[0], sleep=sleep)
    assert summary.records == 4 and len(kinesis.stored) == 4
    assert slept == pytest.approx([1.0, 1.0, 1.0])  # an event hour per second at speed 3600
    assert progress.last_event_id() == records[3].event_id
    assert [r.event_id for r in after(records, progress.last_event_id())] == [r.event_id for r in records[4:]]
