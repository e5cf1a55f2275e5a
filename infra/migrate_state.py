"""``python -m infra migrate-state``: rewrite the pickled states of a deployment as snapshots, once.

Before :mod:`core.state_codec`, the consumer, the Lambda handler and training stored the
stations' state as pickles (``state/...pkl``, ``history/online-seed.pkl``), which the
consumer now refuses. This finds every state a checkpoint item points at (a shard's, or a
Lambda station's) and the seed; reads each pickle into plain data (:func:`legacy_document`),
upgrades and checks it as any snapshot is (:func:`migrate_blob`), writes it beside the old
object under the same name with :data:`core.state_codec.SUFFIX`, moves the pointer to it
with a write conditional on the pointer not having moved, then deletes the pickle. Run it
with the consumers stopped (a running one has stopped the shards it refused: restart it
after). It is idempotent: a pointer already at a snapshot is left alone, and a run
interrupted anywhere is finished by running it again.

This is the only place the project unpickles, and it may: the operator runs it once, over
their own bucket, on blobs their own consumer and training wrote. Even so it builds only
the classes such a pickle names (River's, a few standard ones), and in place of this
project's classes, stand-ins that keep the pickled state and run none of their code.
"""

from __future__ import annotations

import importlib
import io
import logging
import pickle
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date

from botocore.exceptions import ClientError

from adapters.result_store import HISTORY_PREFIX, SEED_KEY, ResultStore
from consumer import checkpoint_table as layout
from consumer.checkpoint_table import HASH_KEY, STATE_KEY
from consumer.checkpoints import STATE_PREFIX
from core import state_codec
from core.features import StationHistory
from core.online_model import regressor_snapshot
from core.state_codec import LegacyStateError, StateSnapshotError

log = logging.getLogger(__name__)

LEGACY_SUFFIX = ".pkl"
LEGACY_SEED_KEY = f"{HISTORY_PREFIX}online-seed{LEGACY_SUFFIX}"


class _Pickled:
    """A stand-in for one of this project's pickled classes: keeps the state, runs no code."""

    state: object = None

    def __setstate__(self, state) -> None:
        self.state = state


class _PickledStationState(_Pickled):
    pass


class _PickledHistory(_Pickled):
    pass


class _PickledOnlineModel(_Pickled):
    pass


class _PickledCombiner(_Pickled):
    pass


def _bound_method(obj, name: str):
    """``getattr`` as pickle uses it for a River target scaler's own two functions, and for nothing else."""
    from river.preprocessing import TargetStandardScaler

    if not isinstance(obj, TargetStandardScaler) or name not in ("_scale", "_unscale"):
        raise LegacyStateError(f"a pickled state asks for {type(obj).__name__}.{name}, which no state of ours held")
    return getattr(obj, name)


def _river(module: str, name: str):
    return lambda: getattr(importlib.import_module(module), name)


#: Every global the pickled states name, and what it is read as.
_ALLOWED = {
    ("core.processing", "StationState"): lambda: _PickledStationState,
    ("core.features", "StationHistory"): lambda: _PickledHistory,
    ("core.online_model", "OnlineModel"): lambda: _PickledOnlineModel,
    ("core.ensemble", "Combiner"): lambda: _PickledCombiner,
    ("collections", "deque"): lambda: deque,
    ("collections", "defaultdict"): lambda: defaultdict,
    ("datetime", "date"): lambda: date,
    ("builtins", "float"): lambda: float,
    ("builtins", "getattr"): lambda: _bound_method,
    **{(module, name): _river(module, name) for module, name in (
        ("river.preprocessing.scale_target", "TargetStandardScaler"),
        ("river.stats.var", "Var"),
        ("river.stats.mean", "Mean"),
        ("river.linear_model.lin_reg", "LinearRegression"),
        ("river.optim.ada_grad", "AdaGrad"),
        ("river.optim.schedulers", "Constant"),
        ("river.optim.losses", "Absolute"),
        ("river.optim.losses", "Squared"),
        ("river.optim.initializers", "Zeros"),
        ("river._river_rust.vectordict", "VectorDict"),
    )},
}


class _LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise LegacyStateError(f"a pickled state names {module}.{name}, which no state of ours held")
        return allowed()


def _state(obj, kind: type[_Pickled]):
    if type(obj) is not kind:
        raise LegacyStateError(f"a pickled state holds a {type(obj).__name__} where a {kind.__name__} belongs")
    return obj.state


def legacy_document(blob: bytes) -> dict:
    """A pickled state as a snapshot document of version 0: what each object held, as plain
    data; filling in what older pickles lack is :data:`core.state_codec.UPGRADES`' part."""
    try:
        states = _LegacyUnpickler(io.BytesIO(blob)).load()
    except StateSnapshotError:
        raise
    except Exception as exc:  # anything a damaged pickle raises
        raise LegacyStateError(f"not a pickled state: {type(exc).__name__}: {exc}") from None
    if not isinstance(states, dict):
        raise LegacyStateError(f"a pickled state is a {type(states).__name__}, not stations")
    stations = {}
    for station, obj in states.items():
        try:
            state = _state(obj, _PickledStationState)
            plain = {"history": _history(_state(state["history"], _PickledHistory)),
                     "online": _online(_state(state["online"], _PickledOnlineModel))}
            if "combiner" in state:
                plain["combiner"] = dict(_state(state["combiner"], _PickledCombiner))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise LegacyStateError(f"station {station}: a pickled state of a shape never written: "
                                   f"{type(exc).__name__}: {exc}") from None
        stations[str(station)] = plain
    return {"format": state_codec.FORMAT, "version": 0, "stations": stations}


def _history(pickled: tuple) -> dict:
    volumes, hours, holidays, last_hour = pickled
    history = StationHistory()
    history.volumes, history.hours, history.last_hour = volumes, hours, last_hour
    plain = history.to_snapshot()
    if isinstance(holidays, set):  # before holidays kept their names: dates alone
        plain["holidays"] = sorted(day.isoformat() for day in holidays)
    else:
        plain["holidays"] = [[day.isoformat(), name] for day, name in holidays.items()]
    return plain


def _online(pickled: dict) -> dict:
    regressors = pickled["regressors"] if "regressors" in pickled else [pickled["regressor"]]
    terms = list(regressors[0].regressor.weights)
    plain = {"updates": pickled["updates"], "terms": terms}
    if "regressors" in pickled:
        plain["regressors"] = [regressor_snapshot(r, terms) for r in regressors]
    else:  # before the squared-loss model: one absolute-loss regressor
        plain["regressor"] = regressor_snapshot(regressors[0], terms)
    return plain


def migrate_blob(blob: bytes) -> bytes:
    """A pickled state as a snapshot of the current version, read back as the consumer reads it."""
    return state_codec.dump_states(state_codec.load_states(state_codec.encode(legacy_document(blob))))


def migrated_key(key: str) -> str:
    return key.removesuffix(LEGACY_SUFFIX) + state_codec.SUFFIX


@dataclass
class Report:
    #: (old key, new key) of each pointer moved (or, in a dry run, that would be).
    migrated: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0
    #: Pointers that moved while this ran: left to whoever moved them.
    moved_meanwhile: list[str] = field(default_factory=list)
    seed: str = "none"
    #: (key, why) of each pickle that could not be read: its pointer is left where it was.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Pickles under ``state/`` no pointer names (replaced states, uploads of fenced-off
    #: writers): never read again, left for the operator to delete.
    unreferenced: list[str] = field(default_factory=list)


@dataclass
class StateMigration:
    dynamodb: object
    s3: object
    table: str
    bucket: str
    app_name: str

    def run(self, dry_run: bool = False) -> Report:
        report = Report()
        referenced = set()
        for item in self._pointers():
            key = item[STATE_KEY]["S"]
            referenced.add(key)
            if not key.endswith(LEGACY_SUFFIX):
                report.already += 1
                continue
            new_key = migrated_key(key)
            try:
                blob = migrate_blob(self._get(key))
            except StateSnapshotError as exc:
                report.failed.append((key, str(exc)))
                continue
            if not dry_run and not self._move(item[HASH_KEY], key, new_key, blob):
                report.moved_meanwhile.append(layout.name_of(item))
                continue
            report.migrated.append((key, new_key))
        try:
            report.seed = self._migrate_seed(dry_run)
        except StateSnapshotError as exc:
            report.failed.append((LEGACY_SEED_KEY, str(exc)))
        listed = ResultStore(self.s3, self.bucket).list_keys(f"{STATE_PREFIX}{self.app_name}/")
        report.unreferenced = [k for k in listed if k.endswith(LEGACY_SUFFIX) and k not in referenced]
        return report

    def _pointers(self):
        """Every checkpoint item of this application that points at a state."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table, ConsistentRead=True,
            FilterExpression=f"begins_with({HASH_KEY}, :app) AND attribute_exists({STATE_KEY})",
            ExpressionAttributeValues={":app": {"S": layout.app_prefix(self.app_name)}})
        for page in pages:
            yield from page["Items"]

    def _move(self, item_key: dict, key: str, new_key: str, blob: bytes) -> bool:
        self.s3.put_object(Bucket=self.bucket, Key=new_key, Body=blob)
        try:
            self.dynamodb.update_item(
                TableName=self.table, Key={HASH_KEY: item_key}, UpdateExpression=f"SET {STATE_KEY} = :new",
                ConditionExpression=f"{STATE_KEY} = :old",
                ExpressionAttributeValues={":new": {"S": new_key}, ":old": {"S": key}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self.s3.delete_object(Bucket=self.bucket, Key=new_key)
            return False
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        log.info("%s: %s -> %s", item_key["S"], key, new_key)
        return True

    def _migrate_seed(self, dry_run: bool) -> str:
        try:
            blob = self._get(LEGACY_SEED_KEY)
        except self.s3.exceptions.NoSuchKey:
            return "none"
        migrated = migrate_blob(blob)
        if dry_run:
            return "to migrate"
        try:  # only where training has not written a snapshot seed since
            self.s3.put_object(Bucket=self.bucket, Key=SEED_KEY, Body=migrated, IfNoneMatch="*")
            outcome = "migrated"
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            outcome = "a snapshot seed was there already: the pickled one deleted"
        self.s3.delete_object(Bucket=self.bucket, Key=LEGACY_SEED_KEY)
        log.info("seed %s -> %s: %s", LEGACY_SEED_KEY, SEED_KEY, outcome)
        return outcome

    def _get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
