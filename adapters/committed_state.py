"""The stations' state as the stream last committed it, read without taking part in the stream.

The consumers commit each shard's stations as a manifest naming each station's segment
(:mod:`core.state_segments`), named by the shard's checkpoint item, and the Lambda handler
each station's own snapshot, named by its station item (:mod:`consumer.checkpoint_table`).
:meth:`CommittedStates.refresh` scans the table, reads every manifest or snapshot it has
not read yet, and only the segments it has not read yet (they never change), and swaps in
the new map of stations at once, so a reader sees one committed state per station, never
a batch half-applied: a manifest is only named once its batch's results are written. A
station found in two places (a parent shard's last state and its child's, after a
reshard) is the one with the newer hour.

Read-only: it never writes, and it needs only ``dynamodb:Scan`` on the table and
``s3:GetObject`` on ``state/`` (:func:`infra.policies.api_policy`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from consumer import checkpoint_table as layout
from core.processing import StationState
from core.state_codec import load_states
from core.state_segments import decode_manifest, is_manifest

log = logging.getLogger(__name__)


class CommittedStates:
    """A map of station to committed state, replaced whole by each :meth:`refresh`."""

    def __init__(self, dynamodb, s3, table: str, bucket: str, app_name: str) -> None:
        self.dynamodb, self.s3, self.table, self.bucket, self.app_name = dynamodb, s3, table, bucket, app_name
        self.stations: dict[str, StationState] = {}
        #: The state key each station was read from (changes when a newer commit is read).
        self.sources: dict[str, str] = {}
        #: When the last refresh succeeded, None before the first.
        self.refreshed_at: datetime | None = None
        #: Per checkpoint or station item: the state key read, its stations, the segments they are in.
        self._loaded: dict[str, tuple[str, dict[str, StationState], frozenset[str]]] = {}
        #: Segments read, by key: a segment is never rewritten.
        self._segments: dict[str, dict[str, StationState]] = {}

    def state_keys(self) -> dict[str, str]:
        """Per checkpoint or station item of this application, the state it names now."""
        keys = {}
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        for page in pages:
            for item in page.get("Items", []):
                name = layout.name_of(item)
                if not name.startswith(layout.app_prefix(self.app_name)) or layout.worker_of(self.app_name, item):
                    continue
                key = item.get(layout.STATE_KEY, {}).get("S")
                if key:
                    keys[name] = key
        return keys

    def refresh(self) -> bool:
        """Read the states committed since the last refresh; True when any station changed.

        An object deleted between the scan and its read (its shard committed again) leaves
        that item's stations as last read, for the next refresh to find its successor; any
        other error propagates and leaves the stations as they were.
        """
        loaded, segments = {}, {}
        for name, key in self.state_keys().items():
            known = self._loaded.get(name)
            if known is not None and known[0] == key:
                loaded[name] = known
                continue
            try:
                loaded[name] = (key, *self._read(key, segments))
            except self.s3.exceptions.NoSuchKey:
                log.info("state %s was replaced before it was read; the next refresh reads its successor", key)
                if known is not None:
                    loaded[name] = known
        stations: dict[str, StationState] = {}
        sources: dict[str, str] = {}
        for key, states, _ in loaded.values():
            for station_id, state in states.items():
                current = stations.get(station_id)
                if current is None or _newest_hour(state) > _newest_hour(current):
                    stations[station_id], sources[station_id] = state, key
        changed = sources != self.sources
        self._loaded, self.stations, self.sources = loaded, stations, sources
        used = {segment for _, _, named in loaded.values() for segment in named}
        self._segments = {k: v for k, v in {**self._segments, **segments}.items() if k in used}
        self.refreshed_at = datetime.now(UTC)
        return changed

    def _read(self, key: str, segments: dict[str, dict[str, StationState]]
              ) -> tuple[dict[str, StationState], frozenset[str]]:
        """The stations ``key`` names (a station's or a whole shard's snapshot, or a
        manifest's segments, each read once into ``segments``), and the segments they are in."""
        blob = self._get(key)
        if not is_manifest(key):
            return load_states(blob), frozenset()
        stations = {}
        locations = decode_manifest(blob)
        for station_id, segment in locations.items():
            if segment not in segments:
                segments[segment] = self._segments.get(segment) or load_states(self._get(segment))
            stations[station_id] = segments[segment][station_id]
        return stations, frozenset(locations.values())

    def _get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _newest_hour(state: StationState) -> int:
    return -1 if state.history.last_hour is None else state.history.last_hour
