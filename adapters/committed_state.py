"""The stations' state as the stream last committed it, read without taking part in the stream.

The consumers commit each shard's stations as one snapshot in S3 named by the shard's
checkpoint item, and the Lambda handler each station's own, named by its station item
(:mod:`consumer.checkpoint_table`). :meth:`CommittedStates.refresh` scans the table, loads
every snapshot it has not loaded yet and swaps in the new map of stations at once, so a
reader sees one committed state per station, never a batch half-applied: a snapshot is
only named once its batch's results are written. A station found in two snapshots (a
parent shard's last state and its child's, after a reshard) is the one with the newer hour.

Read-only: it never writes, and it needs only ``dynamodb:Scan`` on the table and
``s3:GetObject`` on ``state/`` (:func:`infra.policies.api_policy`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from consumer import checkpoint_table as layout
from core.processing import StationState
from core.state_codec import load_states

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
        self._loaded: dict[str, dict[str, StationState]] = {}

    def state_keys(self) -> list[str]:
        """Every snapshot a checkpoint or station item of this application names now."""
        keys = []
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        for page in pages:
            for item in page.get("Items", []):
                name = layout.name_of(item)
                if not name.startswith(layout.app_prefix(self.app_name)) or layout.worker_of(self.app_name, item):
                    continue
                key = item.get(layout.STATE_KEY, {}).get("S")
                if key:
                    keys.append(key)
        return keys

    def refresh(self) -> bool:
        """Load the snapshots committed since the last refresh; True when any station changed.

        A snapshot deleted between the scan and its read (its shard committed again) is
        left for the next refresh, which finds its successor; any other error propagates
        and leaves the stations as they were.
        """
        keys = self.state_keys()
        loaded = {key: states for key, states in self._loaded.items() if key in keys}
        for key in keys:
            if key in loaded:
                continue
            try:
                blob = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except self.s3.exceptions.NoSuchKey:
                log.info("state %s was replaced before it was read; the next refresh reads its successor", key)
                continue
            loaded[key] = load_states(blob)
        stations: dict[str, StationState] = {}
        sources: dict[str, str] = {}
        for key, states in loaded.items():
            for station_id, state in states.items():
                current = stations.get(station_id)
                if current is None or _newest_hour(state) > _newest_hour(current):
                    stations[station_id], sources[station_id] = state, key
        changed = sources != self.sources
        self._loaded, self.stations, self.sources = loaded, stations, sources
        self.refreshed_at = datetime.now(UTC)
        return changed


def _newest_hour(state: StationState) -> int:
    return -1 if state.history.last_hour is None else state.history.last_hour
