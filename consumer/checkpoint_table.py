"""The checkpoint table's item layout: keys, attribute names, and items read as records.

One DynamoDB table, hashed on ``shard_key``, holds three kinds of item per application
(``TRAFFIC_APP_NAME``), so that one table serves every application and every component:

* ``{app}#{shard_id}``: a shard's checkpoint (``sequence_number``, ``pending_until``,
  ``state_key``, ``shard_end``, ``updated_at``) and its lease (``lease_owner``,
  ``lease_counter``), written by :mod:`consumer.checkpoints` and :mod:`consumer.leases`;
* ``{app}#worker#{worker_id}``: a worker's heartbeat, a ``lease_counter`` it bumps;
* ``{app}#station#{station_id}``: a station's state pointer for the Lambda handler
  (``state_key``, ``version``, ``last_sequence``).

Everything that reads or writes the table builds its keys and names its attributes here.
"""

from __future__ import annotations

from dataclasses import dataclass

HASH_KEY = "shard_key"

SEQUENCE_NUMBER = "sequence_number"
PENDING_UNTIL = "pending_until"
STATE_KEY = "state_key"
SHARD_END = "shard_end"
UPDATED_AT = "updated_at"
LEASE_OWNER = "lease_owner"
LEASE_COUNTER = "lease_counter"
VERSION = "version"
LAST_SEQUENCE = "last_sequence"

_WORKER = "worker#"
_STATION = "station#"


@dataclass(frozen=True)
class Checkpoint:
    sequence_number: str | None
    pending_until: str | None
    state_key: str | None
    shard_end: bool


EMPTY = Checkpoint(None, None, None, False)


@dataclass(frozen=True)
class Lease:
    shard_id: str
    owner: str | None
    counter: int
    finished: bool


@dataclass(frozen=True)
class StationPointer:
    """Where a Lambda station's state is, the version every commit is conditional on, and the
    last sequence number committed (records at or below it are a redelivery)."""

    state_key: str
    version: int
    last_sequence: int


# -- keys -----------------------------------------------------------------------------------


def app_prefix(app: str) -> str:
    """What every item key of ``app`` begins with."""
    return f"{app}#"


def worker_prefix(app: str) -> str:
    """What the heartbeat items' keys of ``app`` begin with."""
    return f"{app}#{_WORKER}"


def _key(name: str) -> dict:
    return {HASH_KEY: {"S": name}}


def shard_key(app: str, shard_id: str) -> dict:
    """
    >>> shard_key("traffic", "shardId-000000000000")
    {'shard_key': {'S': 'traffic#shardId-000000000000'}}
    """
    return _key(f"{app}#{shard_id}")


def worker_key(app: str, worker_id: str) -> dict:
    return _key(f"{worker_prefix(app)}{worker_id}")


def station_key(app: str, station_id: str) -> dict:
    return _key(f"{app}#{_STATION}{station_id}")


def name_of(item: dict) -> str:
    """An item's key as text (``{app}#...``), for logs and reports."""
    return item[HASH_KEY]["S"]


def shard_of(app: str, item: dict) -> str | None:
    """The shard whose checkpoint ``item`` is, or None for the other items (heartbeats, stations, other apps).

    >>> shard_of("traffic", {"shard_key": {"S": "traffic#shardId-1"}})
    'shardId-1'
    >>> shard_of("traffic", {"shard_key": {"S": "traffic#worker#w1"}}), shard_of("t", {"shard_key": {"S": "traffic#s"}})
    (None, None)
    """
    name = name_of(item)
    if not name.startswith(app_prefix(app)):
        return None
    rest = name[len(app_prefix(app)):]
    return None if rest.startswith((_WORKER, _STATION)) else rest


def worker_of(app: str, item: dict) -> str | None:
    """The worker whose heartbeat ``item`` is, or None for any other item."""
    name = name_of(item)
    return name[len(worker_prefix(app)):] if name.startswith(worker_prefix(app)) else None


# -- items as records -----------------------------------------------------------------------


def _text(item: dict, name: str) -> str | None:
    return item.get(name, {}).get("S")


def checkpoint(item: dict | None) -> Checkpoint:
    """A shard item's checkpoint; :data:`EMPTY` for a shard never committed (no item)."""
    if not item:
        return EMPTY
    return Checkpoint(
        sequence_number=_text(item, SEQUENCE_NUMBER),
        pending_until=_text(item, PENDING_UNTIL),
        state_key=_text(item, STATE_KEY),
        shard_end=item.get(SHARD_END, {}).get("BOOL", False),
    )


def lease(shard_id: str, item: dict | None) -> Lease:
    """A shard item's lease; counter 0 for a shard never leased (counters start at 1)."""
    item = item or {}
    return Lease(shard_id, _text(item, LEASE_OWNER), counter(item), item.get(SHARD_END, {}).get("BOOL", False))


def counter(item: dict) -> int:
    """An item's ``lease_counter``: a lease's renewals, or a worker's heartbeats."""
    return int(item.get(LEASE_COUNTER, {}).get("N", "0"))


def station(item: dict | None) -> StationPointer | None:
    """A station item's pointer; None for a station never committed."""
    if not item:
        return None
    return StationPointer(item[STATE_KEY]["S"], int(item[VERSION]["N"]), int(item[LAST_SEQUENCE]["S"]))


def held_by(owner: str, counter_value: int) -> tuple[str, dict]:
    """The condition that an item's lease is still ``owner``'s at ``counter_value``, with its
    values: what fences every write of a lease holder."""
    return (f"{LEASE_OWNER} = :owner AND {LEASE_COUNTER} = :counter",
            {":owner": {"S": owner}, ":counter": {"N": str(counter_value)}})
