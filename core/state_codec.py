"""The stations' stream state as a versioned snapshot of plain data, wherever it is stored.

One format for the consumer's per-shard checkpoints, the Lambda handler's per-station state
and training's seed: two lines of compact JSON, a header naming the format, its version and
the CRC-32 of the second line, then each station's
:meth:`~core.processing.StationState.to_snapshot`::

    {"format":"traffic-stream/station-states","version":3,"crc32":2011776432}
    {"301":{"history":{...},"online":{...},"combiner":{...},"drift":{...},"band":{...},"latest":{...}}}

Only numbers, strings, lists, dicts and null: loading a blob builds the classes this code
names, never ones the blob names (a pickle runs whatever code it names, so whoever could
write ``state/`` would own the consumer). Numbers come back exactly (scalars through
``repr``, arrays as their bits, :mod:`core.packing`), so a restored state predicts and
learns bit for bit as the saved one did. A snapshot of an older version is upgraded on its
plain data, one step of :data:`UPGRADES` per version. One that is corrupt, of an unknown
version, of another shape or a pickle raises :class:`StateSnapshotError`, which no retry
can fix. The checksum catches corruption and careless edits; whoever means to can write
valid plain data, which is why the format carries nothing that runs.

JSON: the standard library has it and ``jq`` reads a checkpoint. Not compressed: a station
after 1,200 synthetic hours is 40 KB (lag history 15, online model 18, intervals' calibration
7); gzip's fastest level more than halved a 32 KB station but added 130 µs to the 230 µs of
its dump, and the consumer dumps its stations after every batch, on the thread that
processes records.

>>> from core.processing import StationState
>>> blob = dump_states({"301": StationState()})
>>> states = load_states(blob)
>>> list(states), states["301"].online.updates, dump_states(states) == blob
(['301'], 0, True)
>>> load_states(blob.replace(b'"updates":0', b'"updates":9'))
Traceback (most recent call last):
...
core.errors.StateSnapshotError: a corrupt state snapshot: its stations do not match its checksum
"""

from __future__ import annotations

import copy
import json
import zlib
from collections.abc import Callable

from core.drift import FRESH as FRESH_DRIFT
from core.errors import LegacyStateError, StateSnapshotError  # noqa: F401 (raised here, caught by callers)
from core.intervals import ConformalBand
from core.processing import StationState

FORMAT = "traffic-stream/station-states"
VERSION = 3
#: How the stores name a snapshot's object: each line is a JSON value.
SUFFIX = ".jsonl"
#: What a pickle of protocol 2 or above starts with: the format before snapshots.
_PICKLE_MARK = b"\x80"
#: What building a state from plain data of another shape raises: a key missing, a list where
#: a number belongs, a number too large for an int, ...
_SHAPE_ERRORS = (ArithmeticError, AttributeError, KeyError, TypeError, ValueError)
#: What reading text that is not JSON raises (UTF-8's and JSON's errors are ValueErrors).
_TEXT_ERRORS = (RecursionError, ValueError)


def dump_states(states: dict[str, StationState]) -> bytes:
    """The stations' states as a snapshot of the current :data:`VERSION`."""
    return join({station: dump_station(state) for station, state in states.items()})


def dump_station(state: StationState) -> bytes:
    """One station's state as the part of a snapshot's second line that is its value.

    A shard's stations are stored in segments (:mod:`core.state_segments`) that hold the
    stations a batch changed: these parts are what a segment is joined from, and what the
    consumer keeps of its committed stations to roll back to.
    """
    return json.dumps(state.to_snapshot(), separators=(",", ":")).encode("utf-8")


def join(stations: dict[str, bytes]) -> bytes:
    """A snapshot of the current :data:`VERSION` from :func:`dump_station`'s parts: the same
    bytes as :func:`dump_states` of those stations.

    >>> from core.processing import StationState
    >>> join({"301": dump_station(StationState())}) == dump_states({"301": StationState()})
    True
    """
    body = b"{" + b",".join(json.dumps(station).encode("utf-8") + b":" + part for station, part in stations.items()) + b"}"
    return _with_header(body)


def split(blob: bytes) -> dict[str, bytes]:
    """Each station's part of a snapshot of any known version, as :func:`dump_station` of
    its state at the current version gives it."""
    return {station: dump_station(state) for station, state in load_states(blob).items()}


def load_station(part: bytes) -> StationState:
    """The state of one :func:`dump_station` part."""
    return load_states(join({"_": part}))["_"]


def load_states(blob: bytes) -> dict[str, StationState]:
    """The states of a snapshot of any known version; :class:`StateSnapshotError` if there are none to trust."""
    states = {}
    for station, state in upgrade(decode(blob))["stations"].items():
        try:
            states[station] = StationState.from_snapshot(state)
        except _SHAPE_ERRORS as exc:
            raise StateSnapshotError(f"the state of station {station} does not have the shape of version {VERSION}: "
                                     f"{type(exc).__name__}: {exc}") from None
    return states


def encode(document: dict) -> bytes:
    """A snapshot document (``format``, ``version``, ``stations``) as stored; the same document
    gives the same bytes."""
    body = json.dumps(document["stations"], separators=(",", ":")).encode("utf-8")
    return _with_header(body, document["version"], document["format"])


def _with_header(body: bytes, version: int = VERSION, format: str = FORMAT) -> bytes:
    header = {"format": format, "version": version, "crc32": zlib.crc32(body)}
    return json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + body


def decode(blob: bytes) -> dict:
    """The document of a stored snapshot, its header checked; its version may be older than :data:`VERSION`."""
    if blob[:1] == _PICKLE_MARK:
        raise LegacyStateError("a pickled state from before the snapshot format, which is never unpickled here: "
                               "run `python -m infra migrate-state` once to rewrite it")
    line, newline, body = blob.partition(b"\n")
    try:
        header = json.loads(line)
    except _TEXT_ERRORS as exc:
        raise StateSnapshotError(f"not a state snapshot: its first line is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not newline:
        raise StateSnapshotError(f"not a state snapshot: no header of the format {FORMAT!r}")
    version = header.get("version")
    if type(version) is not int or not 0 <= version <= VERSION:
        raise StateSnapshotError(f"state snapshot version {version!r} is unknown: this code reads 0 to {VERSION}")
    if header.get("crc32") != zlib.crc32(body):
        raise StateSnapshotError("a corrupt state snapshot: its stations do not match its checksum")
    try:
        stations = json.loads(body)
    except _TEXT_ERRORS as exc:
        raise StateSnapshotError(f"a state snapshot whose stations are not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(stations, dict):
        raise StateSnapshotError("a state snapshot whose stations are not an object")
    return {"format": FORMAT, "version": version, "stations": stations}


def upgrade(document: dict) -> dict:
    """The document at :data:`VERSION`, through each upgrade from its own version on."""
    try:
        for version in range(document["version"], VERSION):
            document = UPGRADES[version](document)
    except _SHAPE_ERRORS as exc:
        raise StateSnapshotError(f"a state snapshot of version {document['version']} does not upgrade: "
                                 f"{type(exc).__name__}: {exc}") from None
    return document


def _version_0_to_1(document: dict) -> dict:
    """Version 0 is what ``infra.migrate_state`` reads from a pickled checkpoint: version 1's
    fields, but those of older checkpoints may be missing or older.

    A station without a combiner gets a fresh one, and a combiner without the carried
    residual starts with none; holidays without names get none. An online model with its
    one absolute-loss regressor gets the squared-loss one as a copy of it (same weights,
    target scale and AdaGrad sums): from zero, it would halve every prediction for weeks.
    """
    stations = {}
    for station, state in document["stations"].items():
        state = dict(state)
        state["combiner"] = {**_FRESH_COMBINER, **state.get("combiner", {})}
        history = dict(state["history"])
        history["holidays"] = [[day, None] if isinstance(day, str) else day for day in history["holidays"]]
        state["history"] = history
        online = dict(state["online"])
        if "regressor" in online:
            absolute = online.pop("regressor")
            online["regressors"] = [absolute, {**copy.deepcopy(absolute), "loss": "squared"}]
        state["online"] = online
        stations[station] = state
    return {**document, "version": 1, "stations": stations}


def _version_1_to_2(document: dict) -> dict:
    """Version 2 adds each station's drift detectors (:mod:`core.drift`): they start fresh."""
    stations = {station: {**state, "drift": copy.deepcopy(FRESH_DRIFT)} for station, state in document["stations"].items()}
    return {**document, "version": 2, "stations": stations}


def _version_2_to_3(document: dict) -> dict:
    """Version 3 adds each station's calibration of intervals (:mod:`core.intervals`), which
    starts empty, and its newest record, which starts unknown (no forecast until the next)."""
    stations = {station: {**state, "band": ConformalBand().to_snapshot(), "latest": None}
                for station, state in document["stations"].items()}
    return {**document, "version": 3, "stations": stations}


_FRESH_COMBINER = {"batch_error": None, "online_error": None, "residual": None, "residual_hour": None,
                   "residual_lagged": 0.0, "residual_square": 0.0}

#: ``UPGRADES[v]`` turns a document of version ``v`` into one of version ``v + 1``.
UPGRADES: dict[int, Callable[[dict], dict]] = {0: _version_0_to_1, 1: _version_1_to_2, 2: _version_2_to_3}
