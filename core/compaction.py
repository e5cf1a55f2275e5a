"""Which objects hold a month's prediction rows, before, during and after its compaction.

The consumer writes a month's rows as many small **live** objects, one a batch
(``predictions/event_month=M/<shard>-<sequence>.parquet``). Compaction rewrites a closed
month into a few objects of a new **generation** under ``compacted/event_month=M/`` and
then switches to it with one atomic write: a **manifest** naming the generation's files and
the live objects it absorbed, each with its ETag. A reader takes, for each month:

1. the current manifest's files, if the month has one;
2. every live object the manifest did not absorb: rows that arrived after the compaction
   (late hours), or an absorbed key written again since (its ETag differs), whose rows then
   replace the compacted copies of the same event ids.

The absorbed live objects, and the files of superseded generations, are deleted only a
grace period after the manifest that replaced them was written, so a reader that listed
the month before the switch still finds every object it listed. Each hour is therefore read
exactly once whichever side of the switch a reader listed on.

>>> live = {"predictions/event_month=2017-01/s-1.parquet": "e1", "predictions/event_month=2017-01/s-9.parquet": "e9"}
>>> before = resolve(live, None)
>>> sorted(before.live), before.compacted
(['predictions/event_month=2017-01/s-1.parquet', 'predictions/event_month=2017-01/s-9.parquet'], [])
>>> manifest = Manifest("2017-01", "000001-ab", ["compacted/event_month=2017-01/generation=000001-ab/part-00000.parquet"],
...                     absorbed=live, rows=48, written_at=100.0)
>>> after = resolve({**live, "predictions/event_month=2017-01/s-20.parquet": "e20"}, manifest)
>>> after.compacted, after.live, after.superseding
(['compacted/event_month=2017-01/generation=000001-ab/part-00000.parquet'], ['predictions/event_month=2017-01/s-20.parquet'], [])
>>> resolve({**live, "predictions/event_month=2017-01/s-9.parquet": "e9-rewritten"}, manifest).superseding
['predictions/event_month=2017-01/s-9.parquet']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.errors import ManifestError

MANIFEST_FORMAT = "traffic-stream/compaction-manifest"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """The current generation of one month: its files and the live objects it replaced."""

    month: str
    generation: str
    files: list[str]
    absorbed: Mapping[str, str]
    rows: int
    written_at: float

    def to_json(self) -> bytes:
        return json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "month": self.month,
                           "generation": self.generation, "files": list(self.files),
                           "absorbed": dict(sorted(self.absorbed.items())), "rows": self.rows,
                           "written_at": self.written_at}, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, body: bytes) -> Manifest:
        """The manifest in ``body``; :class:`ManifestError` for anything else.

        >>> m = Manifest("2017-01", "000001-ab", ["f"], {"k": "e"}, 3, 1.5)
        >>> Manifest.from_json(m.to_json()) == m
        True
        >>> Manifest.from_json(b'{"format": "other"}')
        Traceback (most recent call last):
        ...
        core.errors.ManifestError: not a compaction manifest (format 'other', version None)
        """
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ManifestError(f"a compaction manifest is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            found = (data.get("format"), data.get("version")) if isinstance(data, dict) else (None, None)
            raise ManifestError(f"not a compaction manifest (format {found[0]!r}, version {found[1]!r})")
        try:
            return cls(str(data["month"]), str(data["generation"]), [str(f) for f in data["files"]],
                       {str(k): str(v) for k, v in data["absorbed"].items()}, int(data["rows"]),
                       float(data["written_at"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"a compaction manifest lacks a field or has the wrong type: {exc!r}") from exc


@dataclass(frozen=True)
class Selection:
    """What to read for one month: the generation's files, then the live objects.

    ``superseding`` (a subset of ``live``) are absorbed keys written again after the
    compaction: their rows win over the compacted rows with the same event ids."""

    compacted: list[str]
    live: list[str]
    superseding: list[str] = field(default_factory=list)


def resolve(live: Mapping[str, str], manifest: Manifest | None) -> Selection:
    """The objects holding one month's rows exactly once, from its live objects (key → ETag)
    as listed and its current manifest (or None before its first compaction)."""
    if manifest is None:
        return Selection([], sorted(live))
    fresh = sorted(key for key, etag in live.items() if manifest.absorbed.get(key) != etag)
    return Selection(list(manifest.files), fresh, [key for key in fresh if key in manifest.absorbed])


def needs_compaction(month: str, live: Mapping[str, str], manifest: Manifest | None, newest_month: str | None) -> bool:
    """A month is compacted once the stream has moved past it (a later month has rows) and
    again whenever live objects it has not absorbed arrive (late hours).

    >>> needs_compaction("2017-01", {"k": "e"}, None, "2017-02"), needs_compaction("2017-02", {"k": "e"}, None, "2017-02")
    (True, False)
    >>> m = Manifest("2017-01", "g", ["f"], {"k": "e"}, 1, 0.0)
    >>> needs_compaction("2017-01", {"k": "e"}, m, "2017-03"), needs_compaction("2017-01", {"k": "e", "late": "x"}, m, "2017-03")
    (False, True)
    """
    if newest_month is None or month >= newest_month:
        return False
    return bool(resolve(live, manifest).live)


def garbage(manifest: Manifest, live: Mapping[str, str], generation_files: Iterable[str], now: float,
            grace_seconds: float) -> list[str]:
    """What a month can lose once its manifest is older than the grace period: the live
    objects it absorbed (unless written again since) and the files of other generations.

    >>> m = Manifest("2017-01", "g2", ["compacted/g2/a"], {"k": "e"}, 1, written_at=0.0)
    >>> garbage(m, {"k": "e", "late": "x"}, ["compacted/g1/a", "compacted/g2/a"], now=10.0, grace_seconds=60)
    []
    >>> garbage(m, {"k": "e", "late": "x"}, ["compacted/g1/a", "compacted/g2/a"], now=100.0, grace_seconds=60)
    ['compacted/g1/a', 'k']
    """
    if now - manifest.written_at < grace_seconds:
        return []
    current = set(manifest.files)
    stale = [key for key in generation_files if key not in current]
    absorbed = [key for key, etag in live.items() if manifest.absorbed.get(key) == etag]
    return sorted(stale + absorbed)
