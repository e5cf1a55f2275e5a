"""The consumer loop: every shard, from its checkpoint, batch by batch, exactly once in effect.

Each round reads one batch from every shard that is ready (:mod:`adapters.kinesis_reader`),
processes the batches of several shards together (one call to the batch model, by
:mod:`core.processing`) and commits each shard's on its own (:mod:`consumer.commit`). With a
:class:`~consumer.leases.LeaseCoordinator` it reads only the shards it leases. A child
shard is read only after its parents have been read to their end. This module keeps the
loop and its error policy: which failure retries a batch, stops a shard, or ends the process.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from adapters import aws
from adapters import metrics as metric_families
from adapters.kinesis_reader import KinesisReader, ReadAhead
from adapters.model_registry import Champion
from adapters.result_store import ResultStore
from consumer.checkpoints import Checkpoint, CheckpointStore
from consumer.commit import BatchCommit, Committed, Failed
from consumer.leases import LeaseCoordinator, LeaseLost
from consumer.streaming_run import StreamingRun
from consumer.telemetry import Telemetry
from core.config import Settings
from core.processing import RawRecord, StationState, process_batches
from core.state_codec import StateSnapshotError, dump_states, load_states
from core.state_segments import SegmentedState

log = logging.getLogger(__name__)

DISCOVERY_SECONDS = 10.0


@dataclass
class ShardCursor:
    shard_id: str
    parent_ids: tuple[str, ...]
    checkpoint: Checkpoint
    #: The stations as the checkpoint names them (what a failed batch rolls back to); None
    #: until the shard is first read when it was never committed.
    committed: SegmentedState | None
    #: None until the shard is first read: a new child shard inherits its parents' final state.
    states: dict[str, StationState] | None = None
    iterator: str | None = None
    finished: bool = False
    #: The next GetRecords, already on its way while this batch is processed.
    prefetched: ReadAhead | None = None
    #: Why the shard is no longer read (a state that cannot be loaded), its checkpoint left as it was.
    stopped: str | None = None


@dataclass
class ShardBatch:
    """What one shard's read returned in a round, on its way to results and a checkpoint."""

    cursor: ShardCursor
    records: list[dict]
    following: str | None
    #: A re-read of the range a crashed predecessor left pending: read on from the checkpoint after it.
    repair: bool = False

    @property
    def last(self) -> str:
        return self.records[-1]["SequenceNumber"]

    def raws(self) -> list[RawRecord]:
        shard_id = self.cursor.shard_id
        return [RawRecord(r["Data"], shard_id, r["SequenceNumber"], r.get("PartitionKey", "")) for r in self.records]


@dataclass
class ConsumerStats:
    records: int = 0
    rows: int = 0
    dead_letters: int = 0
    batches: int = 0
    failures: int = 0


class Consumer:
    def __init__(
        self,
        settings: Settings,
        kinesis,
        store: ResultStore,
        checkpoints: CheckpointStore,
        champion: Champion | None,
        streaming_run: StreamingRun | None = None,
        leases: LeaseCoordinator | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.reader = KinesisReader(kinesis, settings.stream_name, settings.batch_size, self._background)
        self.store = store
        self.checkpoints = checkpoints
        self.champion = champion
        self.streaming_run = streaming_run
        #: Without a coordinator this process reads every shard; with one, only those it leases.
        self.leases = leases
        self.shards: dict[str, tuple[str, ...]] = {}  # every shard of the stream -> its parents
        self.cursors: dict[str, ShardCursor] = {}
        self.stats = ConsumerStats()
        self.telemetry = telemetry or Telemetry(metric_families.consumer())
        self._discovered_at = -DISCOVERY_SECONDS
        self._seed: bytes | None = None
        # Network calls that wait beside the CPU work: reading the next batch ahead, the
        # checkpoint's pending mark, the state upload, the deletion of replaced states.
        self._io: ThreadPoolExecutor | None = None
        #: A permanent error met in the background (deleting a replaced state): ends the loop.
        self._fatal: Exception | None = None
        self.commit = BatchCommit(checkpoints, store, self._background, self._fence, self._discard_state)

    def seed(self) -> bytes:
        """Where a shard without a checkpoint starts: the state training left, if any."""
        if self._seed is None:
            self._seed = self.store.read_seed() or dump_states({})
        return self._seed

    # -- shards -----------------------------------------------------------------------------

    def discover(self) -> None:
        for shard in self.reader.shards():
            self.shards[shard.shard_id] = shard.parent_ids
            if self.leases is None and shard.shard_id not in self.cursors:
                self.cursors[shard.shard_id] = self._open(shard.shard_id, shard.parent_ids)
        self._discovered_at = time.monotonic()
        self.telemetry.shards(len(self.cursors))

    def balance(self) -> None:
        """Renew leases and take a fair share; (re)open the shards gained, drop the ones lost."""
        gained, lost = self.leases.tick(sorted(self.shards))
        for shard_id in lost:
            self.cursors.pop(shard_id, None)
        for shard_id in gained:
            # From the checkpoint and state as the previous holder left them.
            self.cursors[shard_id] = self._open(shard_id, self.shards[shard_id])
        self.telemetry.shards(len(self.cursors))

    def _open(self, shard_id: str, parents: tuple[str, ...]) -> ShardCursor:
        checkpoint = self.checkpoints.get(shard_id)
        cursor = ShardCursor(shard_id, parents, checkpoint, None, None, finished=checkpoint.shard_end)
        try:
            cursor.committed = self.checkpoints.load_state(checkpoint)
            cursor.states = cursor.committed.states() if cursor.committed is not None else None
        except StateSnapshotError as exc:
            self._stop(cursor, exc)
            return cursor
        log.info("shard %s: starting %s", shard_id,
                 f"after {checkpoint.sequence_number}" if checkpoint.sequence_number else "at TRIM_HORIZON")
        return cursor

    def _initial_state(self, cursor: ShardCursor) -> bytes:
        """A shard's first state: its parents' final states after resharding, else training's seed.

        Stations are keyed by partition key, so whichever shard a station's records move to
        continues its lag history and online model exactly where the parent left them.
        """
        if not cursor.parent_ids:
            return self.seed()
        merged: dict[str, StationState] = {}
        for parent_id in cursor.parent_ids:
            parent = self.cursors.get(parent_id)
            stored = parent.committed if parent is not None else self.checkpoints.load_state(
                self.checkpoints.get(parent_id))
            for station, state in (stored.states() if stored is not None else load_states(self.seed())).items():
                known = merged.get(station)
                if known is None or (state.history.last_hour or -1) > (known.history.last_hour or -1):
                    merged[station] = state
        return dump_states(merged) if merged else self.seed()

    def _finished(self, shard_id: str) -> bool:
        if shard_id in self.cursors:
            return self.cursors[shard_id].finished
        if self.leases is not None and shard_id in self.shards:
            return shard_id in self.leases.finished
        return True  # a parent no longer listed is past the stream's retention

    def _ready(self, cursor: ShardCursor) -> bool:
        return not cursor.finished and cursor.stopped is None and all(self._finished(p) for p in cursor.parent_ids)

    def _fence(self, shard_id: str):
        return self.leases.fence(shard_id) if self.leases is not None else None

    def _new_iterator(self, cursor: ShardCursor) -> str:
        return self.reader.iterator(cursor.shard_id, cursor.checkpoint.sequence_number)

    # -- reading ----------------------------------------------------------------------------

    def poll(self) -> int:
        """Read one batch from every shard that is ready; returns how many records were handled."""
        if self._fatal is not None:
            raise self._fatal
        if time.monotonic() - self._discovered_at >= DISCOVERY_SECONDS:
            self.discover()
        if self.leases is not None and self.leases.due():
            self.balance()
        if self.champion is not None:
            self.champion.refresh()
            self.telemetry.champion(self.champion.version if self.champion.ready else None)
        return self._poll_round([cursor for cursor in list(self.cursors.values()) if self._ready(cursor)])

    def _poll_round(self, cursors: list[ShardCursor]) -> int:
        """One batch from each shard, processed in groups of about ``batch_size`` records.

        Every read is sent before any is waited for, and a group's writes and commits travel
        side by side, so a round costs a few network round trips rather than a few per shard
        (measured with a 25 ms round trip: docs/benchmarks.md). Groups bound the work between
        lease renewals.
        """
        # Shards read for the first time (or again after an error) need an iterator first.
        opening = [(c, self._background(self._new_iterator, c)) for c in cursors
                   if c.iterator is None and c.checkpoint.pending_until is None]
        for cursor, iterator in opening:
            try:
                cursor.iterator = iterator.result()
            except Exception as exc:
                self._on_error(cursor, exc)
        for cursor in cursors:
            self._send_read(cursor)
        handled, group, size = 0, [], 0
        for cursor in cursors:
            if self.leases is not None and self.leases.due():
                # Renew between shards (a round over many shards can outlast a lease), after
                # finishing the group at hand while its shards are surely still held.
                if group:
                    handled += self._handle(group)
                    group, size = [], 0
                self.balance()
            # The same cursor, not just the same shard: a lease lost and taken again within this
            # round reopens the shard from its checkpoint, and the old cursor must not go on.
            if self.cursors.get(cursor.shard_id) is not cursor:
                continue
            batch = self._collect(cursor)
            if batch is None:
                continue
            if not batch.records:
                self._advance(batch)
                continue
            group.append(batch)
            size += len(batch.records)
            if size >= self.settings.batch_size:
                handled += self._handle(group)
                group, size = [], 0
        if group:
            handled += self._handle(group)
        return handled

    def _send_read(self, cursor: ShardCursor) -> None:
        """Put this shard's next GetRecords on its way, unless one already is."""
        if cursor.prefetched is None and cursor.iterator is not None and cursor.checkpoint.pending_until is None:
            cursor.prefetched = self.reader.send(cursor.iterator)

    def _collect(self, cursor: ShardCursor) -> ShardBatch | None:
        """This shard's batch for this round; None if reading failed (already handled)."""
        try:
            if cursor.states is None:
                cursor.committed = SegmentedState.unstored(self._initial_state(cursor))
                cursor.states = cursor.committed.states()
            checkpoint = cursor.checkpoint
            if checkpoint.pending_until is not None:
                # Exactly the range a crashed predecessor was writing, from the committed state;
                # then on from the checkpoint after it (no following iterator).
                log.info("shard %s: re-processing the pending range up to %s", cursor.shard_id,
                         int(checkpoint.pending_until))
                records = self.reader.read_range(cursor.shard_id, checkpoint.sequence_number, checkpoint.pending_until)
                return ShardBatch(cursor, records, following=None, repair=True)
            if cursor.iterator is None:
                cursor.iterator = self._new_iterator(cursor)
            ahead, cursor.prefetched = cursor.prefetched, None
            page = self.reader.page(cursor.iterator, ahead)
            self.telemetry.read(cursor.shard_id, page.millis_behind)
            cursor.prefetched = self.reader.read_ahead(page)
            return ShardBatch(cursor, page.records, page.following)
        except Exception as exc:
            self._on_error(cursor, exc)
            return None

    def _advance(self, batch: ShardBatch) -> None:
        """Move past a handled batch: to the next iterator, or finish a closed shard."""
        cursor = batch.cursor
        if batch.repair:
            cursor.iterator = None
            return
        cursor.iterator = batch.following
        if cursor.iterator is None:
            try:
                self._finish(cursor)
            except Exception as exc:
                self._on_error(cursor, exc)

    # -- committing -------------------------------------------------------------------------

    def _handle(self, group: list[ShardBatch]) -> int:
        """Process a group of shards' batches together and commit each shard's on its own.

        The commit protocol (:class:`consumer.commit.BatchCommit`) yields each shard's result
        as soon as it is known; a failure goes through :meth:`_on_error` right then, which
        may end the round (a permanent error), while the other shards go on.
        """
        now = datetime.now(UTC).isoformat()
        predictor = self.champion if self.champion is not None and self.champion.ready else None

        def process(batches: list[ShardBatch]):
            with self.telemetry.timed("process"):
                return process_batches([(b.raws(), b.cursor.states) for b in batches], predictor, now)

        handled = 0
        with self.telemetry.timed("commit"):
            for result in self.commit.run(group, process, now):
                result.batch.cursor.checkpoint = result.checkpoint
                if isinstance(result, Failed):
                    self._on_error(result.batch.cursor, result.error)
                else:
                    handled += self._committed(result)
        return handled

    def _committed(self, result: Committed) -> int:
        """Account for a committed batch and move its shard on; returns its records."""
        batch, outcome = result.batch, result.outcome
        for letter in outcome.dead_letters:
            log.warning("dead letter %s/%s: %s", letter.shard_id, letter.sequence_number, letter.message[:300])
        batch.cursor.committed = result.state
        self.stats.records += len(batch.records)
        self.stats.rows += len(outcome.rows)
        self.stats.dead_letters += len(outcome.dead_letters)
        self.stats.batches += 1
        self.telemetry.committed(batch.cursor.shard_id, outcome, len(batch.records))
        if self.streaming_run is not None:
            self.streaming_run.observe(outcome.rows, len(outcome.dead_letters))
            self.streaming_run.observe_drift(outcome.drift_events)
        self._advance(batch)
        return len(batch.records)

    def _finish(self, cursor: ShardCursor) -> None:
        cursor.checkpoint, cursor.committed = self.commit.end_shard(cursor.shard_id, cursor.checkpoint,
                                                                    cursor.committed, cursor.states)
        cursor.finished = True
        log.info("shard %s: read to its end (closed after resharding)", cursor.shard_id)

    # -- errors -----------------------------------------------------------------------------

    def _on_error(self, cursor: ShardCursor, exc: Exception) -> None:
        if aws.permanent(exc) is not None:
            raise exc  # denied, bad credentials, a missing resource: no retry can cure it
        if isinstance(exc, LeaseLost):
            log.warning("shard %s: %s; leaving it to its new holder", cursor.shard_id, exc)
            if self.cursors.get(cursor.shard_id) is cursor:  # not a cursor reopened since
                del self.cursors[cursor.shard_id]
                if self.leases is not None:
                    self.leases.forget(cursor.shard_id)
        elif isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ExpiredIteratorException":
            log.info("shard %s: iterator expired, renewing from the checkpoint", cursor.shard_id)
            cursor.iterator = None
        elif isinstance(exc, StateSnapshotError):
            self._stop(cursor, exc)
        else:  # S3/DynamoDB down, a model failing: retry the batch later
            self._fail(cursor, exc)

    def _fail(self, cursor: ShardCursor, exc: Exception) -> None:
        # Roll the in-memory state back to the last commit: the batch will be read again.
        self.stats.failures += 1
        self.telemetry.failed(cursor.shard_id)
        cursor.states = cursor.committed.states() if cursor.committed is not None else None
        cursor.iterator = None
        cursor.prefetched = None
        log.error("shard %s: batch failed, will retry from the checkpoint: %s: %s", cursor.shard_id, type(exc).__name__, exc)

    def _stop(self, cursor: ShardCursor, exc: StateSnapshotError) -> None:
        """Stop reading a shard whose state cannot be loaded: reading it again cannot help, and
        its checkpoint stays where it was for an operator to repair (the other shards go on)."""
        cursor.stopped = f"{type(exc).__name__}: {exc}"
        cursor.iterator = cursor.prefetched = None
        source = cursor.checkpoint.state_key or "its first state (training's seed or its parents')"
        log.error("shard %s: stopped, checkpoint left at %s: %s cannot be loaded: %s", cursor.shard_id,
                  cursor.checkpoint.sequence_number or "TRIM_HORIZON", source, cursor.stopped)

    def _discard_state(self, state_key: str | None) -> None:
        try:
            self.checkpoints.discard_state(state_key)
        except Exception as exc:  # an orphan object costs storage, never a result: log and go on
            if aws.permanent(exc) is not None:
                self._fatal = exc
                return
            log.warning("could not delete the replaced state %s: %s: %s", state_key, type(exc).__name__, exc)

    # -- loop -------------------------------------------------------------------------------

    def _background(self, call, *args, **kwargs) -> Future:
        if self._io is None:
            self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
        return self._io.submit(call, *args, **kwargs)

    def close(self) -> None:
        """Stop reading ahead; calls already sent (reads, state deletions) are waited for."""
        if self._io is not None:
            self._io.shutdown(wait=True, cancel_futures=True)
            self._io = None
        for cursor in self.cursors.values():
            cursor.prefetched = None

    def run(self, stop: threading.Event, idle_exit_seconds: float | None = None) -> ConsumerStats:
        """Poll until ``stop`` is set (or idle for ``idle_exit_seconds``); transient errors are
        retried with backoff, a permanent one (:func:`adapters.aws.permanent`) is raised."""
        idle_since = time.monotonic()
        backoff = self.settings.poll_seconds
        try:
            while not stop.is_set():
                try:
                    handled = self.poll()
                except Exception as exc:  # listing shards or the registry failing: wait and retry
                    if aws.permanent(exc) is not None:
                        raise
                    log.error("poll failed: %s: %s", type(exc).__name__, exc)
                    handled, backoff = 0, min(backoff * 2, 30.0)
                else:
                    backoff = self.settings.poll_seconds
                if handled or (self.leases is not None and not self.cursors):
                    # Waiting for a lease (a dead predecessor's to expire) is not being idle.
                    idle_since = time.monotonic()
                    if handled:
                        continue
                if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
                    log.info("no records for %.0f s: stopping", idle_exit_seconds)
                    break
                stop.wait(backoff)
        finally:
            self.close()
            if self.leases is not None:
                try:  # hand the shards over at once instead of after a lease period
                    self.leases.release_all()
                except Exception as exc:  # they expire after a lease period all the same
                    log.warning("could not release the leases: %s: %s", type(exc).__name__, exc)
            if self.streaming_run is not None:
                self.streaming_run.close()
        return self.stats
