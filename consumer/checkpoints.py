"""Checkpoints in DynamoDB, with the shard's model state beside them in S3.

Per shard, one item holds the last committed sequence number, the S3 key of the state
(lag history and online model of each station) as of that sequence number, and, while a
batch is being written, the sequence number it ends at (``pending_until``). A consumer
that restarts after a crash re-processes exactly the pending range from the committed
state, which rewrites the same objects with the same predictions (only ``processed_at``
differs): results appear once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from consumer import checkpoint_table as layout
from consumer.checkpoint_table import (EMPTY, PENDING_UNTIL, SEQUENCE_NUMBER, SHARD_END, STATE_KEY, UPDATED_AT,
                                       Checkpoint)
from consumer.leases import LeaseLost
from core.state_codec import SUFFIX

__all__ = ["EMPTY", "STATE_PREFIX", "Checkpoint", "CheckpointStore", "Fence"]

#: (owner, lease counter): what a fenced write is conditional on.
Fence = tuple[str, int]


STATE_PREFIX = "state/"


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

    def load_state_blob(self, checkpoint: Checkpoint) -> bytes | None:
        if checkpoint.state_key is None:
            return None
        return self.s3.get_object(Bucket=self.bucket, Key=checkpoint.state_key)["Body"].read()

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

    def put_state(self, shard_id: str, sequence_number: str | None, state_blob: bytes) -> str:
        """Upload a state for :meth:`commit` to point at; returns its key.

        The key is unique to this upload, so a fenced-off writer never overwrites the state a
        checkpoint points at; it can only leave an orphan object behind. Separate from the
        commit so that the upload can travel beside the batch's result writes.
        """
        name = f"{sequence_number or 'start'}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        state_key = f"{STATE_PREFIX}{self.app_name}/{shard_id}/{name}"
        self.s3.put_object(Bucket=self.bucket, Key=state_key, Body=state_blob)
        return state_key

    def commit(self, shard_id: str, sequence_number: str | None, state_key: str, shard_end: bool = False,
               fence: Fence | None = None) -> Checkpoint:
        """Move the checkpoint to ``sequence_number``, with the state uploaded as ``state_key``.

        The state the checkpoint pointed at before is not deleted here: see :meth:`discard_state`.
        """
        values = {":s": {"S": state_key}, ":t": {"S": _now()}, ":e": {"BOOL": shard_end}}
        expression = f"SET {STATE_KEY} = :s, {UPDATED_AT} = :t, {SHARD_END} = :e"
        if sequence_number is not None:
            expression += f", {SEQUENCE_NUMBER} = :q"
            values[":q"] = {"S": sequence_number}
        try:
            self._update(shard_id, f"{expression} REMOVE {PENDING_UNTIL}", values, fence)
        except LeaseLost:
            self.discard_state(state_key)
            raise
        return Checkpoint(sequence_number, None, state_key, shard_end)

    def discard_state(self, state_key: str | None) -> None:
        """Delete a state no checkpoint points at any more (the one a commit replaced)."""
        if state_key:
            self.s3.delete_object(Bucket=self.bucket, Key=state_key)


def _now() -> str:
    return datetime.now(UTC).isoformat()
