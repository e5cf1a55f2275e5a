"""A shard's committed stations as segments and a manifest: each batch stores only what it changed.

A **segment** is a station-states snapshot (:mod:`core.state_codec`) of some stations of a
shard: those one batch changed, plus any it moved out of a mostly superseded segment. The
**manifest** names, for every station of the shard, the segment holding its committed
state; the shard's checkpoint names the manifest. A batch uploads one segment and one
manifest, so the bytes it writes grow with the stations it touched (a manifest costs
about 20 bytes a station, against about 47 KB for a station's state), not with every
station on the shard. Segments and manifests are never overwritten: each upload has a key
of its own, and what a commit replaced is deleted after it (the commit protocol,
:mod:`consumer.commit`).

**Cleaning.** A segment stays while any station's state is in it. When fewer than half of
its stations are still named there, the next batch copies those into its own segment, so
the stored bytes stay under twice the live state, and the copying, over time, under the
bytes written for the stations touched (each copy moves under half a segment whose other
half was rewritten by touched stations). Which segments are cleaned depends only on the
committed manifest and the batch, so a batch processed again after a crash plans the same.

A checkpoint that names a whole-shard snapshot (as before segments) reads as one segment
holding every station; the first batch after it writes its touched stations' segment and
names the rest there, until cleaning moves them.

>>> from core.processing import StationState
>>> from core.state_codec import dump_station
>>> states = {s: StationState() for s in ("a", "b", "c")}
>>> first = SegmentedState.empty().plan(states, set(), "s1.jsonl", "m1.manifest.json")
>>> sorted(first.uploads), first.state.locations
(['m1.manifest.json', 's1.jsonl'], {'a': 's1.jsonl', 'b': 's1.jsonl', 'c': 's1.jsonl'})
>>> second = first.state.plan(states, {"a"}, "s2.jsonl", "m2.manifest.json")   # one station touched
>>> second.state.locations, second.replaced
({'b': 's1.jsonl', 'c': 's1.jsonl', 'a': 's2.jsonl'}, ['m1.manifest.json'])
>>> third = second.state.plan(states, {"b"}, "s3.jsonl", "m3.manifest.json")   # s1 under half live: c moves
>>> third.state.locations, third.replaced
({'a': 's2.jsonl', 'b': 's3.jsonl', 'c': 's3.jsonl'}, ['m2.manifest.json', 's1.jsonl'])
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from core.errors import StateSnapshotError
from core.processing import StationState
from core.state_codec import dump_station, join, load_station, split

MANIFEST_FORMAT = "traffic-stream/state-manifest"
MANIFEST_VERSION = 1
#: How the stores name a manifest's object (a segment's is :data:`core.state_codec.SUFFIX`).
MANIFEST_SUFFIX = ".manifest.json"


def is_manifest(key: str) -> bool:
    return key.endswith(MANIFEST_SUFFIX)


def encode_manifest(locations: Mapping[str, str]) -> bytes:
    """Two lines of compact JSON, as a snapshot: a header with the CRC-32 of the second, then
    station -> segment key, in station order (the same locations give the same bytes).

    >>> decode_manifest(encode_manifest({"b": "s2", "a": "s1"}))
    {'a': 's1', 'b': 's2'}
    """
    body = json.dumps(dict(sorted(locations.items())), separators=(",", ":")).encode("utf-8")
    header = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "crc32": zlib.crc32(body)}
    return json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + body


def decode_manifest(blob: bytes) -> dict[str, str]:
    """The locations of a stored manifest; :class:`StateSnapshotError` for anything else."""
    line, newline, body = blob.partition(b"\n")
    try:
        header, locations = json.loads(line), json.loads(body)
    except (RecursionError, ValueError) as exc:
        raise StateSnapshotError(f"not a state manifest: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != MANIFEST_FORMAT or not newline:
        raise StateSnapshotError(f"not a state manifest: no header of the format {MANIFEST_FORMAT!r}")
    if header.get("version") != MANIFEST_VERSION:
        raise StateSnapshotError(f"state manifest version {header.get('version')!r} is unknown: "
                                 f"this code reads {MANIFEST_VERSION}")
    if header.get("crc32") != zlib.crc32(body):
        raise StateSnapshotError("a corrupt state manifest: its locations do not match its checksum")
    if not isinstance(locations, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in locations.items()):
        raise StateSnapshotError("a state manifest whose locations are not an object of strings")
    return locations


@dataclass(frozen=True)
class Plan:
    """What a batch's commit stores: the objects to upload, the state the checkpoint will
    name once they are stored, and the objects it no longer needs after the commit."""

    state: SegmentedState
    uploads: dict[str, bytes]
    replaced: list[str]

    @property
    def written(self) -> int:
        """Bytes uploaded."""
        return sum(len(blob) for blob in self.uploads.values())


@dataclass(frozen=True)
class SegmentedState:
    """A shard's committed stations: where each is stored, and its committed part."""

    #: What the checkpoint names: a manifest, a whole-shard snapshot, or None before the first commit.
    key: str | None
    #: Station -> the segment holding its committed state.
    locations: dict[str, str]
    #: Station -> its committed state, as :func:`core.state_codec.dump_station` gave it.
    parts: dict[str, bytes]
    #: Segment -> how many stations it holds (live or not).
    sizes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> SegmentedState:
        return cls(None, {}, {})

    @classmethod
    def unstored(cls, snapshot: bytes) -> SegmentedState:
        """Stations not stored for this shard yet (training's seed, the parents' merged
        states): the first commit stores them all."""
        return cls(None, {}, split(snapshot))

    @classmethod
    def read(cls, key: str, manifest: bytes | None, segments: Mapping[str, bytes]) -> SegmentedState:
        """The state named ``key``: a manifest and the segments it names, or (``manifest``
        None) a whole-shard snapshot, ``segments[key]``."""
        if manifest is None:
            parts = split(segments[key])
            return cls(key, {station: key for station in parts}, parts, {key: len(parts)})
        locations = decode_manifest(manifest)
        parts, sizes = {}, {}
        for segment, blob in segments.items():
            held = split(blob)
            sizes[segment] = len(held)
            for station, part in held.items():
                if locations.get(station) == segment:
                    parts[station] = part
        missing = sorted(set(locations) - set(parts))
        if missing:
            raise StateSnapshotError(f"the state manifest {key} names segments without stations {missing[:5]}")
        return cls(key, locations, parts, sizes)

    def states(self) -> dict[str, StationState]:
        return {station: load_station(part) for station, part in self.parts.items()}

    def plan(self, states: Mapping[str, StationState], touched: Collection[str], segment_key: str,
             manifest_key: str) -> Plan:
        """The commit of ``states`` after a batch that changed ``touched`` stations.

        Stored: the touched stations and those never stored here, and the live stations of
        each segment under half live, in one segment at ``segment_key``; the manifest at
        ``manifest_key``. Nothing at all when nothing changed and a manifest is named already.
        """
        changed = {s for s in touched if s in states} | (set(states) - set(self.locations))
        parts = {**self.parts, **{s: dump_station(states[s]) for s in sorted(changed)}}
        locations = {s: segment for s, segment in self.locations.items() if s not in changed}
        live = Counter(locations.values())
        moved = {s for s, segment in locations.items() if 2 * live[segment] < self.sizes.get(segment, live[segment])}
        written = changed | moved
        if not written and self.key is not None and is_manifest(self.key):
            return Plan(self, {}, [])
        locations = {s: k for s, k in locations.items() if s not in moved}
        uploads = {}
        if written:
            uploads[segment_key] = join({s: parts[s] for s in sorted(written)})
            locations.update({s: segment_key for s in sorted(written)})
        uploads[manifest_key] = encode_manifest(locations)
        kept = set(locations.values())
        sizes = {k: len(written) if k == segment_key else self.sizes.get(k, live[k]) for k in kept}
        replaced = sorted({k for k in self.locations.values() if k not in kept} |
                          ({self.key} if self.key is not None and is_manifest(self.key) else set()))
        return Plan(SegmentedState(manifest_key, locations, parts, sizes),
                    uploads, replaced)
