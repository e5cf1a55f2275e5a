"""Several consumer processes share the shards through leases; exactly once across takeovers.

3 workers, 8 shards, 20 (synthetic) stations: the workers settle to a balanced share; one
is killed with SIGKILL mid-replay and the others take its shards within the lease period;
afterwards every event is in the output exactly once and each station's online model
equals an uninterrupted run. A zombie (SIGSTOP past its lease, then SIGCONT) has its late
writes refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from adapters import aws, model_registry
from consumer.checkpoints import CheckpointStore
from core import synthetic
from core.processing import RawRecord, process_batch
from core.schema import encode
from core.state_codec import load_states
from infra.provision import Provisioner
from tests.conftest import ROOT
from tests.integration import helpers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEASE_SECONDS = 5.0


@pytest.fixture
def fleet(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAFFIC_LEASE_SECONDS", str(LEASE_SECONDS))
    monkeypatch.setenv("TRAFFIC_BATCH_SIZE", "100")
    settings = settings.replace(stream_shards=8, lease_seconds=LEASE_SECONDS, batch_size=100)
    monkeypatch.setenv("TRAFFIC_STREAM_SHARDS", "8")
    Provisioner(settings).create(with_iam=False)
    model_registry.connect(settings)  # create MLflow's database once, not racing in every worker
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "ab")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "consumer", "--no-tracking", "--worker-id", name], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT)
        return processes[name]

    yield settings, start, tmp_path
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait(10)


def stations(count: int, hours: int, records):
    return synthetic.many_stations(records[:hours], count)


def final_states(settings) -> dict:
    s3 = aws.client("s3", settings)
    store = CheckpointStore(aws.client("dynamodb", settings), s3, settings.checkpoint_table, settings.bucket,
                            settings.app_name)
    merged = {}
    for shard in aws.client("kinesis", settings).list_shards(StreamName=settings.stream_name)["Shards"]:
        blob = store.load_state_blob(store.get(shard["ShardId"]))
        if blob:
            merged.update(load_states(blob))
    return merged


def assert_exactly_once_and_same_models(settings, records, following):
    rows = helpers.store(settings).read_predictions()
    counts = Counter(rows["event_id"])
    assert len(rows) == len(records) and set(counts) == {r.event_id for r in records}
    assert max(counts.values()) == 1
    states = final_states(settings)
    uninterrupted: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records)], uninterrupted, None, "t")
    assert set(states) == set(uninterrupted)
    nxt = [RawRecord(encode(r), "s", str(i)) for i, r in enumerate(following)]
    a = process_batch(nxt, states, None, "t").rows
    b = process_batch(nxt, uninterrupted, None, "t").rows
    assert [(r["event_id"], r["online_prediction"]) for r in a] == [(r["event_id"], r["online_prediction"]) for r in b]


def test_three_workers_share_eight_shards_and_survive_a_kill(fleet, synthetic_records):
    settings, start, logs = fleet
    everything = stations(20, 330, synthetic_records)
    records, following = everything[: 20 * 300], everything[20 * 300 :]
    helpers.produce(settings, records[:3000])
    workers = {name: start(name) for name in ("w1", "w2", "w3")}

    def balanced():
        held = Counter(o for o in helpers.lease_owners(settings).values() if o)
        return len(held) == 3 and sum(held.values()) == 8 and max(held.values()) - min(held.values()) <= 1 and held
    share = helpers.wait_until(balanced, 180, 0.2, "a balanced share of the 8 shards among 3 workers")
    print(f"\nsettled: {dict(share)}")

    victim_shards = {s for s, o in helpers.lease_owners(settings).items() if o == "w2"}
    workers["w2"].send_signal(signal.SIGKILL)
    workers["w2"].wait(10)
    killed_at = time.monotonic()
    helpers.produce(settings, records[3000:])
    helpers.wait_until(lambda: all(helpers.lease_owners(settings)[s] in ("w1", "w3") for s in victim_shards), 60, 0.1,
                       "the survivors to take the killed worker's shards")
    takeover = time.monotonic() - killed_at
    print(f"takeover of {len(victim_shards)} shards after SIGKILL: {takeover:.1f} s (lease {LEASE_SECONDS:g} s)")
    assert takeover <= 4 * LEASE_SECONDS

    store = helpers.store(settings)
    helpers.wait_until(lambda: len(store.read_predictions()) >= len(records), 180, 1.0, "every record predicted")
    for name in ("w1", "w3"):
        workers[name].send_signal(signal.SIGTERM)  # graceful: finish, checkpoint, release
        assert workers[name].wait(60) == 0
    assert all(o is None for o in helpers.lease_owners(settings).values())  # released on SIGTERM
    assert_exactly_once_and_same_models(settings, records, following)


def test_a_zombie_cannot_write_after_losing_its_lease(fleet, synthetic_records):
    settings, start, logs = fleet
    everything = stations(8, 330, synthetic_records)
    records, following = everything[: 8 * 300], everything[8 * 300 :]
    helpers.produce(settings, records[:1200])
    zombie = start("zombie")
    helpers.wait_until(lambda: Counter(helpers.lease_owners(settings).values()).get("zombie") == 8, 60, 0.2,
                       "the first worker to hold every shard")
    zombie.send_signal(signal.SIGSTOP)
    helpers.produce(settings, records[1200:])
    other = start("healthy")
    helpers.wait_until(lambda: set(helpers.lease_owners(settings).values()) == {"healthy"}, 60, 0.2,
                       "the healthy worker to take every lease of the paused one")
    store = helpers.store(settings)
    helpers.wait_until(lambda: len(store.read_predictions()) >= len(records), 180, 1.0, "every record predicted")
    zombie.send_signal(signal.SIGCONT)
    helpers.wait_until(lambda: "lost the lease" in (logs / "zombie.log").read_text()
                       or "no longer holds" in (logs / "zombie.log").read_text(), 60, 0.2,
                       "the zombie to notice it lost its leases")
    helpers.produce(settings, following[:0])
    other.send_signal(signal.SIGTERM)
    zombie.send_signal(signal.SIGTERM)
    assert other.wait(60) == 0 and zombie.wait(60) == 0
    assert set(helpers.lease_owners(settings).values()) == {None}
    assert_exactly_once_and_same_models(settings, records, following)
