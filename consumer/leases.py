"""Shard leases in DynamoDB, the way the Kinesis Client Library coordinates workers.

Every worker of an application (same ``TRAFFIC_APP_NAME``) holds a lease per shard it
reads, on the shard's checkpoint item: ``lease_owner`` and a ``lease_counter`` that the
owner increments at every renewal. A lease whose counter has not moved for a whole lease
period (as observed by the worker looking at it, so clocks need not agree) is expired and
may be taken. Workers announce themselves with a heartbeat item, aim for an equal share of
the unfinished shards, take free or expired leases first and steal one from the most loaded
worker when still short. Every change is a conditional write on the counter that was seen.

The counter is also the fencing token: checkpoint and state writes are conditional on
``lease_owner`` and ``lease_counter`` (see :mod:`consumer.checkpoints`), and a worker stops
writing results once its lease's local deadline has passed, so a paused or partitioned
worker that lost its lease can no longer change anything.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable

from botocore.exceptions import ClientError

from consumer import checkpoint_table as layout
from consumer.checkpoint_table import HASH_KEY, LEASE_COUNTER, LEASE_OWNER, Lease

log = logging.getLogger(__name__)

#: Part of a lease period after which a holder stops writing unless it has renewed.
SAFETY = 0.8


class LeaseLost(RuntimeError):
    """This worker no longer holds the lease of a shard it was working on."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def steal_from(held: int, target: int, loads: dict[str, int]) -> str | None:
    """The worker to take one lease from, if any: the busiest, while it holds two more.

    Shares then settle within one of each other and stay there.

    >>> steal_from(2, 3, {"a": 4, "b": 2})   # 8 shards, 3 workers, stuck at 4/2/2
    'a'
    >>> steal_from(2, 3, {"a": 3, "b": 3})   # 3/3/2 is balanced
    >>> steal_from(3, 3, {"a": 5})           # at target: wait for others to take theirs
    """
    if held >= target or not loads:
        return None
    busiest = max(loads, key=lambda w: (loads[w], w))
    return busiest if loads[busiest] - held >= 2 else None


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class LeaseCoordinator:
    def __init__(
        self,
        dynamodb,
        table: str,
        app_name: str,
        worker_id: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.app_name = app_name
        self.worker_id = worker_id
        self.period = lease_seconds
        self.clock = clock
        self.held: dict[str, int] = {}  # shard -> the counter we last wrote
        self.deadline: dict[str, float] = {}  # shard -> until when we may write (local clock)
        self._observed: dict[str, tuple[int, float]] = {}  # shard -> (counter seen, since when)
        self._ticked_at: float | None = None
        self.finished: set[str] = set()

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, shard_id: str) -> dict:
        return layout.shard_key(self.app_name, shard_id)

    def fence(self, shard_id: str) -> tuple[str, int]:
        """The token a write for ``shard_id`` is conditional on; raises if the lease is gone."""
        if shard_id not in self.held or self.clock() >= self.deadline[shard_id]:
            raise LeaseLost(f"{self.worker_id} no longer holds {shard_id}")
        return self.worker_id, self.held[shard_id]

    # -- reading the table --------------------------------------------------------------------

    def read(self, shard_ids: list[str]) -> tuple[dict[str, Lease], set[str]]:
        """Every shard's lease and the live workers (this one included), from one Scan.

        One consistent Scan of the application's items, not a GetItem per shard: a worker's
        calls per tick stay the same whatever the number of shards (what a Scan reads still
        grows with the table's items; ``docs/benchmarks.md#leases-at-scale``). A worker is
        live when its heartbeat moved within a lease period, as this worker has seen it.
        """
        now = self.clock()
        items: dict[str, dict] = {}
        alive = {self.worker_id}
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table, FilterExpression=f"begins_with({HASH_KEY}, :p)",
            ExpressionAttributeValues={":p": {"S": layout.app_prefix(self.app_name)}}, ConsistentRead=True)
        for page in pages:
            for item in page["Items"]:
                worker = layout.worker_of(self.app_name, item)
                if worker is None:
                    shard_id = layout.shard_of(self.app_name, item)
                    if shard_id is not None:
                        items[shard_id] = item
                    continue
                beat = layout.counter(item)
                seen = self._observed.get(f"worker#{worker}")
                if seen is None or seen[0] != beat:
                    self._observed[f"worker#{worker}"] = (beat, now)
                    alive.add(worker)
                elif now - seen[1] < self.period:
                    alive.add(worker)
        return {shard_id: layout.lease(shard_id, items.get(shard_id)) for shard_id in shard_ids}, alive

    def _expired(self, lease: Lease, now: float) -> bool:
        seen = self._observed.get(lease.shard_id)
        if seen is None or seen[0] != lease.counter:
            self._observed[lease.shard_id] = (lease.counter, now)
            return False
        return now - seen[1] >= self.period

    # -- writing ------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        self.dynamodb.update_item(
            TableName=self.table, Key=layout.worker_key(self.app_name, self.worker_id),
            UpdateExpression=f"ADD {LEASE_COUNTER} :one", ExpressionAttributeValues={":one": {"N": "1"}})

    def _write(self, shard_id: str, expected: int | None, owner: str | None) -> int | None:
        """Set the owner and bump the counter if it is still ``expected``; the new counter or None."""
        new = (expected or 0) + 1
        values = {":new": {"N": str(new)}}
        if expected is None:
            condition = f"attribute_not_exists({LEASE_COUNTER})"
        else:
            condition = f"{LEASE_COUNTER} = :seen"
            values[":seen"] = {"N": str(expected)}
        if owner is None:
            update = f"SET {LEASE_COUNTER} = :new REMOVE {LEASE_OWNER}"
        else:
            update = f"SET {LEASE_COUNTER} = :new, {LEASE_OWNER} = :owner"
            values[":owner"] = {"S": owner}
        try:
            self.dynamodb.update_item(TableName=self.table, Key=self._key(shard_id), UpdateExpression=update,
                                      ConditionExpression=condition, ExpressionAttributeValues=values)
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return new

    def _hold(self, shard_id: str, counter: int) -> None:
        self.held[shard_id] = counter
        self.deadline[shard_id] = self.clock() + SAFETY * self.period
        self._observed[shard_id] = (counter, self.clock())

    def renew(self) -> list[str]:
        """Renew every lease held; returns the shards whose lease was lost."""
        lost = []
        for shard_id, counter in list(self.held.items()):
            # Even past our local deadline the conditional write is the judge: if the counter
            # is still ours, nobody has taken the lease in between.
            new = self._write_owned(shard_id, counter)
            if new is None:
                lost.append(shard_id)
            else:
                self._hold(shard_id, new)
        for shard_id in lost:
            self.forget(shard_id)
            log.warning("%s lost the lease of %s", self.worker_id, shard_id)
        return lost

    def _write_owned(self, shard_id: str, counter: int, release: bool = False) -> int | None:
        """Bump (renew) or give up (release) a lease we hold at ``counter``; the new counter or None."""
        condition, held = layout.held_by(self.worker_id, counter)
        try:
            self.dynamodb.update_item(
                TableName=self.table, Key=self._key(shard_id),
                UpdateExpression=f"SET {LEASE_COUNTER} = :new" + (f" REMOVE {LEASE_OWNER}" if release else ""),
                ConditionExpression=condition, ExpressionAttributeValues={":new": {"N": str(counter + 1)}, **held})
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return counter + 1

    def forget(self, shard_id: str) -> None:
        """Stop holding ``shard_id`` without writing: a refused write showed its lease has moved on."""
        self.held.pop(shard_id, None)
        self.deadline.pop(shard_id, None)

    def release(self, shard_id: str) -> None:
        counter = self.held.pop(shard_id, None)
        self.deadline.pop(shard_id, None)
        if counter is not None and self._write_owned(shard_id, counter, release=True) is not None:
            log.info("%s released %s", self.worker_id, shard_id)

    def release_all(self) -> None:
        for shard_id in list(self.held):
            self.release(shard_id)

    # -- balancing ----------------------------------------------------------------------------

    def due(self) -> bool:
        return self._ticked_at is None or self.clock() - self._ticked_at >= self.period / 3

    def tick(self, shard_ids: list[str]) -> tuple[list[str], list[str]]:
        """Renew, then take or steal toward an equal share. Returns (gained, lost) shards."""
        self._ticked_at = self.clock()
        self._heartbeat()
        lost = self.renew()
        leases, workers = self.read(shard_ids)
        self.finished = {s for s, lease in leases.items() if lease.finished}
        open_leases = {s: lease for s, lease in leases.items() if not lease.finished}
        for shard_id in [s for s in self.held if s in self.finished]:
            self.release(shard_id)
        target = math.ceil(len(open_leases) / max(1, len(workers)))
        now = self.clock()
        gained = []
        free = [lease for lease in open_leases.values() if lease.shard_id not in self.held and (
            lease.owner is None or lease.owner not in workers or self._expired(lease, now))]
        for lease in sorted(free, key=lambda l: l.shard_id):
            if len(self.held) >= target:
                break
            # Counters start at 1, so 0 means the item has none yet (a shard never leased).
            new = self._write(lease.shard_id, lease.counter or None, self.worker_id)
            if new is not None:
                self._hold(lease.shard_id, new)
                gained.append(lease.shard_id)
        load: dict[str, list[Lease]] = {}
        for lease in open_leases.values():
            if lease.owner and lease.owner != self.worker_id and lease.owner in workers:
                load.setdefault(lease.owner, []).append(lease)
        busiest = steal_from(len(self.held), target, {w: len(ls) for w, ls in load.items()})
        if busiest is not None:
            victim = sorted(load[busiest], key=lambda l: l.shard_id)[0]
            new = self._write(victim.shard_id, victim.counter, self.worker_id)
            if new is not None:
                log.info("%s took %s from %s to balance", self.worker_id, victim.shard_id, busiest)
                self._hold(victim.shard_id, new)
                gained.append(victim.shard_id)
        for shard_id in gained:
            log.info("%s holds %s", self.worker_id, shard_id)
        return gained, lost
