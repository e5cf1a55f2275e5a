"""Leases at scale, simulated: the real :class:`consumer.leases.LeaseCoordinator` of many
workers against one DynamoDB table, on a clock the simulation moves.

    python -m bench.leases [--shards 200] [--workers 10,25,50] [--stop 10]

Each worker is a coordinator with its own DynamoDB client and its own clock, which runs
within ±1 % of the simulated time (leases are judged on each worker's own observations,
so clocks need only run at about the same rate, not agree). Time moves in steps of a
twelfth of the lease period; a worker ticks whenever its coordinator says it is due (every
third of a period), the workers starting at random moments of the first period and
ticking in a random order each step. Nothing sleeps: a period of the simulation costs what
its DynamoDB calls cost.

At every step each worker writes a checkpoint to every shard it holds (a batch), conditional
on its fence as the consumer's are, and every successful write is checked: no lease epoch
(a shard's counter) is ever written under by two workers. A worker whose lease was taken
keeps believing it holds it until its next renewal; its writes in between are refused by
the condition, and counted. Measured: lease periods until balanced (every shard held by a live
worker, each worker within one shard of the mean), the same after ``--stop`` workers stop
at once without releasing anything, and each worker's DynamoDB calls (and the items its
Scans read) per lease period once balanced.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import describe

#: Simulated time per step, as a part of the lease period.
STEPS_PER_PERIOD = 12


class WorkerClock:
    """One worker's clock: the simulated time at its own rate."""

    def __init__(self, fleet: Fleet, rate: float) -> None:
        self.fleet, self.rate = fleet, rate

    def __call__(self) -> float:
        return self.fleet.now * self.rate


@dataclass
class Calls:
    """A worker's DynamoDB calls by operation, and the items its Scans read."""

    by_operation: Counter = field(default_factory=Counter)
    scanned: int = 0

    def before(self, event_name: str, **_) -> None:
        self.by_operation[event_name.rsplit(".", 1)[-1]] += 1

    def after_scan(self, parsed: dict, **_) -> None:
        self.scanned += int(parsed.get("ScannedCount", 0))

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


class Violation(AssertionError):
    """Two workers wrote to one shard under the same lease epoch."""


class Fleet:
    """``workers`` coordinators over ``shards`` shards of one application in one table."""

    def __init__(self, make_client, table: str, shards: int, workers: int, period: float = 10.0,
                 seed: int = 0, app_name: str | None = None) -> None:
        from consumer.leases import LeaseCoordinator

        self.random = random.Random(seed)
        self.now = 0.0
        self.period = period
        self.shards = [f"shardId-{i:012d}" for i in range(shards)]
        app_name = app_name or f"sim{seed}x{workers}x{shards}"
        self.coordinators: dict[str, LeaseCoordinator] = {}
        self.calls: dict[str, Calls] = {}
        self.starts: dict[str, float] = {}
        for i in range(workers):
            name = f"w{i:03d}"
            client = make_client()
            calls = self.calls[name] = Calls()
            client.meta.events.register("before-call.dynamodb", calls.before)
            client.meta.events.register("after-call.dynamodb.Scan", calls.after_scan)
            self.coordinators[name] = LeaseCoordinator(client, table, app_name, name, period,
                                                       clock=WorkerClock(self, self.random.uniform(0.99, 1.01)))
            self.starts[name] = self.random.uniform(0.0, period)
        self.alive = set(self.coordinators)
        #: The checkpoint writes' own client, so the coordinators' calls are counted alone.
        self.writer = make_client()
        #: (shard, lease counter) -> the worker whose checkpoint writes succeeded under it.
        self.epochs: dict[tuple[str, int], str] = {}
        self.written = self.refused = 0
        self.steps = 0

    @property
    def periods(self) -> float:
        return self.now / self.period

    def step(self) -> None:
        """Move time one step; every started live worker, in a random order, ticks if it is due
        and writes to its shards."""
        self.now += self.period / STEPS_PER_PERIOD
        self.steps += 1
        order = sorted(name for name in self.alive if self.starts[name] <= self.now)
        self.random.shuffle(order)
        for name in order:
            coordinator = self.coordinators[name]
            if coordinator.due():
                coordinator.tick(self.shards)
            self.write(name)

    def write(self, name: str) -> None:
        """``name`` writes a checkpoint to every shard its fence allows, conditional on the
        fence as :mod:`consumer.checkpoints` writes them; raises :class:`Violation` if a write
        under an epoch another worker already wrote under succeeds."""
        from botocore.exceptions import ClientError

        from consumer import checkpoint_table as layout
        from consumer.leases import LeaseLost

        coordinator = self.coordinators[name]
        for shard_id in list(coordinator.held):
            try:
                owner, counter = coordinator.fence(shard_id)
            except LeaseLost:
                continue
            condition, values = layout.held_by(owner, counter)
            try:
                self.writer.update_item(
                    TableName=coordinator.table, Key=layout.shard_key(coordinator.app_name, shard_id),
                    UpdateExpression=f"SET {layout.UPDATED_AT} = :at", ConditionExpression=condition,
                    ExpressionAttributeValues={**values, ":at": {"S": f"{self.now:.3f}"}})
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                self.refused += 1  # its lease moved on before it renewed: the fence held
                continue
            first = self.epochs.setdefault((shard_id, counter), owner)
            if first != owner:
                raise Violation(f"{shard_id} written under epoch {counter} by {first} and {owner}")
            self.written += 1

    def shares(self) -> dict[str, int]:
        """Shards each live worker can write now."""
        shares = {}
        for name in self.alive:
            coordinator = self.coordinators[name]
            shares[name] = sum(1 for s in coordinator.held if coordinator.clock() < coordinator.deadline[s])
        return shares

    def balanced(self) -> bool:
        shares = self.shares()
        mean = len(self.shards) / len(self.alive)
        return sum(shares.values()) == len(self.shards) and all(abs(n - mean) <= 1 for n in shares.values())

    def run_until_balanced(self, max_periods: float) -> float:
        """Periods from now until balanced (and still balanced a period later); raises past ``max_periods``."""
        started = self.periods
        while True:
            if self.periods - started > max_periods:
                raise TimeoutError(f"not balanced after {max_periods} lease periods: {sorted(self.shares().values())}")
            self.step()
            if self.balanced():
                return self.periods - started

    def stop(self, count: int) -> list[str]:
        """``count`` live workers stop at once, releasing nothing (a crash, or a lost zone)."""
        stopped = self.random.sample(sorted(self.alive), count)
        self.alive -= set(stopped)
        return stopped

    def calls_per_period(self, periods: float) -> tuple[float, float, float]:
        """Over ``periods`` more lease periods: mean DynamoDB calls per live worker per period,
        the most any worker made, and the items its Scans read per period."""
        before = {name: (self.calls[name].total, self.calls[name].scanned) for name in self.alive}
        started = self.periods
        while self.periods - started < periods:
            self.step()
        span = self.periods - started
        made = [(self.calls[n].total - before[n][0]) / span for n in self.alive]
        scanned = [(self.calls[n].scanned - before[n][1]) / span for n in self.alive]
        return sum(made) / len(made), max(made), sum(scanned) / len(scanned)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=200)
    parser.add_argument("--workers", default="10,25,50")
    parser.add_argument("--stop", type=int, default=10, help="workers stopped at once, at the largest fleet")
    parser.add_argument("--steady-periods", type=float, default=5.0, help="periods over which calls are counted")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from adapters import aws
    from core.config import Settings
    from infra.emulator import client_environment, free_port, start
    from infra.provision import Provisioner
    from infra.server_process import stop

    workdir = Path(tempfile.mkdtemp(prefix="bench-leases-"))
    port = free_port()
    emulator = start(port, workdir / "moto.log")
    os.environ.update({**client_environment(port), "TRAFFIC_HOME": str(workdir)})
    try:
        settings = Settings.from_env()
        rows = []
        sizes = [int(w) for w in args.workers.split(",")]
        for workers in sizes:
            # A table of its own: a Scan reads every item of its table, other fleets' included.
            table = f"{settings.checkpoint_table}-{workers}"
            Provisioner(settings).create_table(table)
            fleet = Fleet(lambda: aws.clients(settings, "dynamodb")[0], table, args.shards, workers, seed=args.seed)
            cold = fleet.run_until_balanced(max_periods=60)
            mean, most, scanned = fleet.calls_per_period(args.steady_periods)
            row = {"workers": workers, "cold": cold, "mean": mean, "most": most, "scanned": scanned}
            if workers == max(sizes) and args.stop:
                fleet.stop(args.stop)
                row["takeover"] = fleet.run_until_balanced(max_periods=60)
            row["written"], row["refused"] = fleet.written, fleet.refused
            rows.append(row)
            print(row, flush=True)
    finally:
        stop(emulator, 10)
    print()
    print(describe())
    print(f"{args.shards} shards, lease period = 1, a tick every 1/3 period, {STEPS_PER_PERIOD} steps a period; "
          "DynamoDB on a moto server\n")
    print("| workers | periods to balanced, cold | after stopping workers | DynamoDB calls / worker / period "
          "(mean, most) | items read by Scans / worker / period | writes checked | late writes refused |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for row in rows:
        takeover = f"{row['takeover']:.2f} ({args.stop} stopped)" if "takeover" in row else "-"
        print(f"| {row['workers']} | {row['cold']:.2f} | {takeover} | {row['mean']:.1f}, {row['most']:.1f} | "
              f"{row['scanned']:.0f} | {row['written']:,} | {row['refused']:,} |")


if __name__ == "__main__":
    main()
