"""SIGKILL the producer and the consumer at random moments: nothing lost, nothing twice.

The consumer is killed at least 20 times while it works through a replay of 5,000 hours
(with a lane closure from hour 3,000 on: volumes ×0.6), and restarted each time; the
producer is killed mid-replay and restarted with --resume. Afterwards the bucket holds
exactly one row per event id, exactly the drift events an uninterrupted run detects, each
once, and the online model's state equals that of an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest

from adapters import aws
from consumer.checkpoints import CheckpointStore
from core import dataset, synthetic
from core.processing import RawRecord, process_batch
from core.schema import encode
from core.state_codec import load_states
from infra.provision import Provisioner
from monitor.reconcile import dead_letter_event_id, reconcile
from monitor.stream_contents import shard_records
from tests.conftest import ROOT
from tests.integration import helpers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 20
RECORDS = 5000


def spawn(module_args: list[str], log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *module_args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def stream_records(settings) -> list[dict]:
    contents = shard_records(aws.client("kinesis", settings), settings.stream_name)
    return [record for records in contents.values() for record in records]


def stream_event_ids(settings) -> list[str]:
    return [r["Data"].split(b'"event_id":"', 1)[1].split(b'"', 1)[0].decode() for r in stream_records(settings)]


def test_killed_producer_and_consumer_lose_nothing_and_duplicate_nothing(settings, monkeypatch, tmp_path):
    # Small batches, so that 20 consumers each killed within 0.3 s of their first commit are
    # still far from the end of the stream (with reads ahead, one ran ~250 records per life at 40).
    monkeypatch.setenv("TRAFFIC_BATCH_SIZE", "20")
    # Each restart waits for the killed worker's lease to expire before it takes the shard.
    monkeypatch.setenv("TRAFFIC_LEASE_SECONDS", "2")
    # The conftest's synthetic hours, with a lane closure in the middle of the replay.
    data = synthetic.write_csv(tmp_path / "closure.csv.gz", start="2015-01-01", hours=24 * 425, seed=7,
                               gap=(24 * 200, 24 * 5), level_shift=("2015-05-06 08:00", 0.6))
    monkeypatch.setenv("TRAFFIC_DATA", str(data))
    settings = settings.replace(batch_size=20, data_path=str(data))
    Provisioner(settings).create(with_iam=False)
    all_records = dataset.to_records(dataset.read_frame(data), "301")
    records = all_records[:RECORDS]
    first, last = records[0].local_time.isoformat(), records[-1].local_time.isoformat()
    rng = random.Random(2026)
    log = open(tmp_path / "processes.log", "ab")

    # -- the producer, killed mid-replay and resumed ---------------------------------------------
    progress = settings.home / f"producer-{settings.stream_name}.json"
    producer_kills = 0
    produce = ["producer", "--start", first, "--end", last, "--speed", "3000000", "--resume", "--no-progress"]
    while True:
        process = spawn(produce, log)
        size_before = progress.stat().st_mtime_ns if progress.exists() else 0
        helpers.wait_until(lambda: process.poll() is not None or (progress.exists() and progress.stat().st_mtime_ns
                                                                  != size_before), 60, 0.02, "producer progress")
        if process.poll() is not None or producer_kills >= 4:
            assert process.wait(120) == 0
            break
        kill(process)
        producer_kills += 1
    on_stream = stream_event_ids(settings)
    assert set(on_stream) == {r.event_id for r in records}  # no hour missing (duplicates allowed)

    # -- the consumer, killed at random moments while it works -----------------------------------
    checkpoints = CheckpointStore(aws.client("dynamodb", settings), aws.client("s3", settings),
                                  settings.checkpoint_table, settings.bucket, settings.app_name)
    shard = aws.client("kinesis", settings).list_shards(StreamName=settings.stream_name)["Shards"][0]["ShardId"]

    def position() -> int:
        return int(checkpoints.get(shard).sequence_number or 0)

    stream_end = max(int(r["SequenceNumber"]) for r in stream_records(settings))

    consumer_kills = 0
    while consumer_kills < KILLS:
        before = position()
        process = spawn(["consumer", "--no-tracking"], log)
        helpers.wait_until(lambda: position() != before or process.poll() is not None, 120, 0.01, "consumer progress")
        assert position() < stream_end, "the consumer reached the end of the stream before it was killed enough"
        process_deadline = rng.uniform(0.0, 0.3)
        try:
            process.wait(process_deadline)  # let it run a random while longer, then kill it mid-work
        except subprocess.TimeoutExpired:
            pass
        if process.poll() is not None:
            pytest.fail(f"the consumer exited by itself: see {tmp_path / 'processes.log'}")
        kill(process)
        consumer_kills += 1
    final = spawn(["consumer", "--no-tracking", "--idle-exit", "5"], log)
    assert final.wait(300) == 0

    store = helpers.store(settings)
    rows = store.read_predictions()
    letters = store.read_dead_letters()
    result = reconcile([r.event_id for r in records], rows["event_id"], [dead_letter_event_id(d) for d in letters])
    duplicates_on_stream = len(on_stream) - len(set(on_stream))
    print(f"\nproducer kills {producer_kills}, consumer kills {consumer_kills}, stream duplicates "
          f"{duplicates_on_stream}, rows {len(rows)}, dead letters {len(letters)}, missing {len(result.missing)}, "
          f"duplicated {len(result.duplicates)}")
    assert consumer_kills >= KILLS
    assert result.ok and result.predicted == RECORDS and rows["event_id"].is_unique
    assert len(letters) == duplicates_on_stream and {d["reason"] for d in letters} <= {"duplicate_event"}

    # -- the drift events: those of an uninterrupted run, each once, the closure's among them ----------
    uninterrupted: dict = {}
    outcome = process_batch([RawRecord(encode(r), shard, str(i)) for i, r in enumerate(records)], uninterrupted, None, "t")

    def detection(event) -> tuple:
        return event["station_id"], event["event_time"], event["model"], event["statistic"]

    written = [detection(e) for e in store.read_drift_events()]
    expected = [detection(e.as_dict("t")) for e in outcome.drift_events]
    print(f"drift events {len(written)}, of an uninterrupted run {len(expected)}")
    assert sorted(written) == sorted(expected) and len(set(written)) == len(written)
    assert any(e[1] >= "2015-05-06T08:00" and e[1] < "2015-05-07T08:00" for e in written), "the closure was not detected"

    # -- the online model equals an uninterrupted run's --------------------------------------------
    killed_state = load_states(checkpoints.load_state_blob(checkpoints.get(shard)))
    following = [RawRecord(encode(r), shard, str(i)) for i, r in enumerate(all_records[RECORDS:RECORDS + 200])]
    a = process_batch(following, killed_state, None, "t").rows
    b = process_batch(following, uninterrupted, None, "t").rows
    assert [r["online_prediction"] for r in a] == [r["online_prediction"] for r in b]
    assert killed_state["301"].online.updates == RECORDS + 200
