"""Leases at a fleet's scale, simulated (bench.leases): the real coordinator of 10 workers over
40 shards on moto's DynamoDB, on a simulated clock, every checkpoint write checked for a second writer in its lease epoch."""

from __future__ import annotations

import pytest

from adapters import aws
from bench.leases import Fleet
from infra.provision import Provisioner

pytestmark = pytest.mark.integration


def test_ten_workers_balance_forty_shards_and_take_over_from_three_stopped_without_two_writers(settings):
    Provisioner(settings).create_table(settings.checkpoint_table)
    fleet = Fleet(lambda: aws.clients(settings, "dynamodb")[0], settings.checkpoint_table, shards=40, workers=10)

    cold = fleet.run_until_balanced(max_periods=20)  # Fleet.write raises on two writers in one epoch
    assert sorted(set(fleet.shares().values())) == [4]
    mean, most, scanned = fleet.calls_per_period(3)
    # A tick is a heartbeat, one Scan, and a renewal per shard held (4): at most 3 ticks a period
    # (fewer on a worker whose clock runs slow), and no GetItem per shard.
    assert 2 * (1 + 1 + 4) <= mean <= most <= 3 * (1 + 1 + 4), (mean, most)
    assert {op for calls in fleet.calls.values() for op in calls.by_operation} == {"UpdateItem", "Scan"}
    assert 2 * 50 <= scanned <= 3 * 50  # what a Scan reads grows with the items: 40 shards, 10 heartbeats

    stopped = fleet.stop(3)
    takeover = fleet.run_until_balanced(max_periods=20)
    shares = fleet.shares()
    assert set(shares) == fleet.alive and not fleet.alive & set(stopped)
    assert sum(shares.values()) == 40 and max(shares.values()) - min(shares.values()) <= 1
    # Nobody takes a stopped worker's lease before it has stood still for a whole period.
    assert 1.0 <= takeover, takeover
    assert len({shard for shard, _ in fleet.epochs}) == 40 and fleet.written > 40 * 3 * 4
    print(f"balanced after {cold:.2f} periods, again {takeover:.2f} periods after 3 stopped; {mean:.1f} calls a period")
