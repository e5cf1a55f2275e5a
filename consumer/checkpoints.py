"""Checkpoints in DynamoDB, with the shard's model state beside them in S3.

Per shard, one item holds the last committed sequence number, the S3 key of the state
(each station's lag history, models, detectors and calibration) as of that sequence number,
and, while a batch is being written, the sequence number it ends at (``pending_until``).
The state is a manifest naming each station's segment (:mod:`core.state_segments`), so a
batch stores only the stations it touched. A consumer
that restarts after a crash re-processes exactly the pending range from the committed
state, which rewrites the same objects with the same predictions (only ``processed_at``
differs): results appear once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from consumer import checkpoint_table as layout
from consumer.checkpoint_table import (EMPTY, PENDING_UNTIL, SEQUENCE_NUMBER, SHARD_END, STATE_KEY, UPDATED_AT,
                                       Checkpoint)
from consumer.leases import LeaseLost
from core.state_codec import SUFFIX, join
from core.state_segments import MANIFEST_SUFFIX, SegmentedState, decode_manifest, is_manifest

__all__ = ["EMPTY", "STATE_PREFIX", "Checkpoint", "CheckpointStore", "Fence"]

#: (owner, lease counter): what a fenced write is conditional on.
Fence = tuple[str, int]


STATE_PREFIX = "state/"
#: Segments read side by side when a shard's state is opened.
READ_THREADS = 8


class CheckpointStore:
    def __init__(self, dynamodb, s3, table: str, bucket: str, app_name: str) -> None:
        self.dynamodb = dynamodb
        self.s3 = s3
        self.table = table
        self.bucket = bucket
        self.app_name = app_name

    def _key(self, shard_id: str) -> dict:
        return layout.shard_key(self.app_name, shard_id)

    def get(self, shard_id: str) -> Checkpoint:
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(shard_id), ConsistentRead=True).get("Item")
        return layout.checkpoint(item)

    def load_state(self, checkpoint: Checkpoint) -> SegmentedState | None:
        """The committed state ``checkpoint`` names (its manifest and segments, or a
        whole-shard snapshot); None for a shard never committed."""
        key = checkpoint.state_key
        if key is None:
            return None
        blob = self.read_object(key)
        if not is_manifest(key):
            return SegmentedState.read(key, None, {key: blob})
        segments = sorted(set(decode_manifest(blob).values()))
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, max(1, len(segments)))) as pool:
            return SegmentedState.read(key, blob, dict(zip(segments, pool.map(self.read_object, segments), strict=True)))

    def load_state_blob(self, checkpoint: Checkpoint) -> bytes | None:
        """All the committed stations of ``checkpoint`` as one snapshot; None if there are none."""
        stored = self.load_state(checkpoint)
        return None if stored is None else join(stored.parts)

    def read_object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _update(self, shard_id: str, expression: str, values: dict, fence: Fence | None) -> None:
        kwargs = {}
        if fence is not None:
            kwargs["ConditionExpression"], held = layout.held_by(*fence)
            values = {**values, **held}
        try:
            self.dynamodb.update_item(TableName=self.table, Key=self._key(shard_id), UpdateExpression=expression,
                                      ExpressionAttributeValues=values, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise LeaseLost(f"the lease of {shard_id} moved on: write refused") from None
            raise

    def begin(self, shard_id: str, pending_until: str, fence: Fence | None = None) -> None:
        """Record that a batch ending at ``pending_until`` is about to be written."""
        self._update(shard_id, f"SET {PENDING_UNTIL} = :p, {UPDATED_AT} = :t",
                     {":p": {"S": pending_until}, ":t": {"S": _now()}}, fence)

    def state_keys(self, shard_id: str, sequence_number: str | None) -> tuple[str, str]:
        """New keys for a commit's segment and manifest.

        Unique to this upload, so a fenced-off writer never overwrites a state a checkpoint
        names; it can only leave orphan objects behind. Known before the upload so that the
        manifest can travel beside its segment and the batch's result writes.
        """
        stem = f"{STATE_PREFIX}{self.app_name}/{shard_id}/{sequence_number or 'start'}-{uuid.uuid4().hex[:8]}"
        return stem + SUFFIX, stem + MANIFEST_SUFFIX

    def put_object(self, key: str, blob: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=blob)

    def commit(self, shard_id: str, sequence_number: str | None, state_key: str, shard_end: bool = False,
               fence: Fence | None = None, written: Collection[str] = ()) -> Checkpoint:
        """Move the checkpoint to ``sequence_number``, with the state named ``state_key``.

        If the lease refuses the write, the objects ``written`` for it are deleted. The state
        the checkpoint named before is not deleted here: see :meth:`discard_state`.
        """
        values = {":s": {"S": state_key}, ":t": {"S": _now()}, ":e": {"BOOL": shard_end}}
        expression = f"SET {STATE_KEY} = :s, {UPDATED_AT} = :t, {SHARD_END} = :e"
        if sequence_number is not None:
            expression += f", {SEQUENCE_NUMBER} = :q"
            values[":q"] = {"S": sequence_number}
        try:
            self._update(shard_id, f"{expression} REMOVE {PENDING_UNTIL}", values, fence)
        except LeaseLost:
            for key in written:
                self.discard_state(key)
            raise
        return Checkpoint(sequence_number, None, state_key, shard_end)

    def discard_state(self, state_key: str | None) -> None:
        """Delete a manifest or segment no checkpoint needs any more (what a commit replaced)."""
        if state_key:
            self.s3.delete_object(Bucket=self.bucket, Key=state_key)


def _now() -> str:
    return datetime.now(UTC).isoformat()
