"""The commit protocol: what makes a batch's results appear exactly once.

For each shard's batch, in this order: (1) mark the checkpoint pending up to the batch's
last record, (2) write its rows, dead letters, drift events and new state (a segment of
the stations it touched and a manifest, :mod:`core.state_segments`), (3) commit the
checkpoint to that manifest, (4) discard what the manifest replaced. A crash between (1) and (3)
leaves the pending mark, from which whoever opens the shard next re-processes exactly that
range from the committed state, rewriting the same objects (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from adapters.result_store import ResultStore
from consumer.checkpoints import Checkpoint, CheckpointStore, Fence
from core.processing import BatchOutcome, StationState
from core.state_segments import Plan, SegmentedState

if TYPE_CHECKING:
    from consumer.worker import ShardBatch


@dataclass(frozen=True)
class Committed:
    """A batch whose results are written and whose checkpoint has moved past it."""

    batch: ShardBatch
    checkpoint: Checkpoint
    outcome: BatchOutcome
    #: The state the checkpoint now names.
    state: SegmentedState


@dataclass(frozen=True)
class Failed:
    """A batch a step failed for; the shard's checkpoint did not move past it."""

    batch: ShardBatch
    #: The checkpoint as the failure left it: marked pending once that mark was stored.
    checkpoint: Checkpoint
    error: Exception


ShardResult = Committed | Failed

#: A step: yields the shards it failed for, returns those that go on to the next step.
_Step = Generator[Failed, None, "list[_InFlight]"]


@dataclass
class _InFlight:
    """One shard's batch between the steps, and the calls of each step on their way."""

    batch: ShardBatch
    checkpoint: Checkpoint
    marked: Future | None = None
    outcome: BatchOutcome | None = None
    plan: Plan | None = None
    uploads: list[Future] | None = None
    rows: Future | None = None
    dead_letters: Future | None = None
    drift_events: Future | None = None
    committed: Future | None = None  # -> the new Checkpoint

    def failed(self, error: Exception) -> Failed:
        return Failed(self.batch, self.checkpoint, error)


class BatchCommit:
    """Commits groups of shards' batches through ``checkpoints`` and ``results``.

    ``submit`` runs a call in the background and returns its future (the consumer's I/O
    threads); ``fence`` gives the lease token a shard's writes are conditional on (None
    without leases) and raises once the lease is gone; ``discard`` deletes a replaced
    manifest or segment. Each batch's cursor holds its shard's committed state
    (``committed``, a :class:`~core.state_segments.SegmentedState`) and its stations (``states``).
    """

    def __init__(self, checkpoints: CheckpointStore, results: ResultStore, submit: Callable[..., Future],
                 fence: Callable[[str], Fence | None], discard: Callable[[str | None], None]) -> None:
        self.checkpoints = checkpoints
        self.results = results
        self.submit = submit
        self.fence = fence
        self.discard = discard

    def run(self, group: list[ShardBatch], process: Callable[[list[ShardBatch]], list[BatchOutcome]],
            now: str) -> Iterator[ShardResult]:
        """Process ``group`` together with ``process`` and commit each shard's batch on its own.

        Within each step the shards' calls travel side by side: the pending marks while the
        group is processed (which is pure and needs them only before writing), each shard's
        state upload beside its results, all shards' writes and then all commits together.
        Each shard's result is yielded as soon as it is known, a failure at the step that
        failed (that shard goes no further; the others go on), so that whoever handles it
        may end the round right there.
        """
        flights = yield from self._mark_pending(group)                      # (1)
        try:
            outcomes = process([f.batch for f in flights])
        except Exception as exc:
            for flight in flights:
                yield flight.failed(exc)
            return
        flights = yield from self._write(flights, outcomes, now)            # (2)
        flights = yield from self._commit_checkpoints(flights)              # (3)
        yield from self._discard_replaced(flights)                          # (4)

    def _mark_pending(self, group: list[ShardBatch]) -> _Step:
        """(1) Send each batch's pending mark, conditional on the lease, without waiting for it."""
        flights = []
        for batch in group:
            flight = _InFlight(batch, batch.cursor.checkpoint)
            try:
                flight.marked = self.submit(self.checkpoints.begin, batch.cursor.shard_id, batch.last,
                                            self.fence(batch.cursor.shard_id))
                flights.append(flight)
            except Exception as exc:
                yield flight.failed(exc)
        return flights

    def _write(self, flights: list[_InFlight], outcomes: list[BatchOutcome], now: str) -> _Step:
        """(2) Once a shard's pending mark is stored and its lease still held, send its state
        upload, rows, dead letters and drift events side by side."""
        writing = []
        for flight, outcome in zip(flights, outcomes, strict=True):
            shard_id, last = flight.batch.cursor.shard_id, flight.batch.last
            try:
                cursor = flight.batch.cursor
                flight.outcome = outcome
                flight.plan = cursor.committed.plan(cursor.states, outcome.stations,
                                                    *self.checkpoints.state_keys(shard_id, last))
                flight.marked.result()
                flight.checkpoint = replace(flight.checkpoint, pending_until=last)
                self.fence(shard_id)  # still ours (not paused past the lease) before results are written
                flight.uploads = [self.submit(self.checkpoints.put_object, key, blob)
                                  for key, blob in flight.plan.uploads.items()]
                flight.rows = self.submit(self.results.write_rows, outcome.rows)
                flight.dead_letters = self.submit(self.results.write_dead_letters, outcome.dead_letters, now)
                if outcome.drift_events:
                    flight.drift_events = self.submit(self.results.write_drift_events, outcome.drift_events, now)
                writing.append(flight)
            except Exception as exc:
                yield flight.failed(exc)
        return writing

    def _commit_checkpoints(self, flights: list[_InFlight]) -> _Step:
        """(3) Once all of a shard's writes are done, send the commit of its checkpoint to the
        manifest uploaded, conditional on the lease."""
        committing = []
        for flight in flights:
            shard_id = flight.batch.cursor.shard_id
            try:
                for upload in flight.uploads:
                    upload.result()
                flight.rows.result()
                flight.dead_letters.result()
                if flight.drift_events is not None:
                    flight.drift_events.result()
                flight.committed = self.submit(self.checkpoints.commit, shard_id, flight.batch.last,
                                               flight.plan.state.key, shard_end=False, fence=self.fence(shard_id),
                                               written=list(flight.plan.uploads))
                committing.append(flight)
            except Exception as exc:
                yield flight.failed(exc)
        return committing

    def _discard_replaced(self, flights: list[_InFlight]) -> Iterator[ShardResult]:
        """(4) Once a shard's checkpoint is committed, delete in the background what its new
        manifest replaced: the batch is done."""
        for flight in flights:
            try:
                flight.checkpoint = flight.committed.result()
                # Housekeeping only: a failed delete leaves an orphan object, never a wrong result.
                for key in flight.plan.replaced:
                    self.submit(self.discard, key)
            except Exception as exc:
                yield flight.failed(exc)
                continue
            yield Committed(flight.batch, flight.checkpoint, flight.outcome, flight.plan.state)

    def end_shard(self, shard_id: str, checkpoint: Checkpoint, committed: SegmentedState,
                  states: dict[str, StationState]) -> tuple[Checkpoint, SegmentedState]:
        """Commit a shard read to its end (closed by resharding): its final state, marked
        ``shard_end`` so that its children may be read; returns the new checkpoint and state."""
        plan = committed.plan(states, (), *self.checkpoints.state_keys(shard_id, checkpoint.sequence_number))
        for key, blob in plan.uploads.items():
            self.checkpoints.put_object(key, blob)
        new = self.checkpoints.commit(shard_id, checkpoint.sequence_number, plan.state.key, shard_end=True,
                                      fence=self.fence(shard_id), written=list(plan.uploads))
        for key in plan.replaced:
            self.submit(self.discard, key)
        return new, plan.state
