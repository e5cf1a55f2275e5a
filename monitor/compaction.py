"""Compaction of closed months: a month's many small objects rewritten into a few.

``python -m monitor compact`` runs it; the retrainer runs it after each retrain cycle. For
each month the stream has moved past that has live objects no manifest absorbed
(:func:`core.compaction.needs_compaction`), :meth:`Compactor.compact_month` takes these
steps, in this order, so that no reader ever sees an hour twice or misses one:

1. list the month's live objects with their ETags, and read its current manifest;
2. read exactly what a reader reads now (:func:`core.compaction.resolve`), sorted by
   station and event time;
3. write it as the files of a new generation, under a prefix of its own that nothing
   reads yet;
4. point the catalog's partition at the new generation: Athena's switch;
5. write the month's manifest: the switch for this project's readers (one PUT, atomic);
6. delete, once a manifest is older than the grace period, the live objects it absorbed
   and the files of the generations it superseded (a reader that listed before the switch
   has had the grace period to read them).

A step that fails leaves what the readers see unchanged (steps 1-3: nothing points at the
new files; 4-5: each switch is whole) and the next run starts again from step 1. Two runs
at once each write a generation of their own (the id is unique); the manifest written last
wins and the other generation is garbage after the grace period. Live objects written
after step 1 (late hours) are not absorbed: readers read them beside the generation, and
the next run compacts the month again.

Open months get a partition at the consumer's prefix, so Athena sees them as they fill.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from adapters import aws
from adapters.catalog import Catalog
from adapters.result_store import (
    COMPACTED_PREFIX, PARTITION, PREDICTIONS_PREFIX, ROW_SCHEMA, ResultStore, generation_prefix)
from core.compaction import Manifest, garbage, needs_compaction, resolve
from core.config import Settings

log = logging.getLogger(__name__)

#: A month at 100 stations is 74,400 rows (about 4 MB of Parquet): one file. Larger months split.
ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class MonthCompacted:
    month: str
    generation: str
    objects_before: int
    files: int
    rows: int


@dataclass
class Compactor:
    store: ResultStore
    #: None where there is no catalog (``TRAFFIC_GLUE_CATALOG=0``): steps 4 and the partitions are skipped.
    catalog: Catalog | None
    grace_seconds: float
    clock: Callable[[], float] = time.time
    rows_per_file: int = ROWS_PER_FILE

    def run(self, months: Iterable[str] | None = None) -> list[MonthCompacted]:
        """Compact the closed months that need it (or exactly ``months``), register the
        catalog's partitions, and collect what the grace period has released."""
        manifests = self.store.manifests()
        live = self.store.live_objects()
        newest = max([*live, *manifests], default=None)
        chosen = sorted(months) if months is not None else [
            m for m in sorted(live) if needs_compaction(m, live[m], manifests.get(m), newest)]
        if self.catalog is not None:
            self.catalog.register({m: f"{PREDICTIONS_PREFIX}{PARTITION}={m}/" for m in live if m not in manifests},
                                  self.catalog.locations())
        done = [self.compact_month(month) for month in chosen]
        self.collect()
        return done

    def compact_month(self, month: str) -> MonthCompacted:
        # 1. what the month holds now
        manifest = self.store.manifest(month)
        live = self.store.live_objects(month).get(month, {})
        selection = resolve(live, manifest)
        # 2. read it as a reader would
        frame = self.store.read_selection(selection).drop(columns=["_key", PARTITION])
        frame = frame.sort_values(["station_id", "event_time"], kind="stable")
        table = pa.Table.from_pandas(frame, schema=ROW_SCHEMA, preserve_index=False)
        # 3. a new generation, read by nobody yet
        previous = int(manifest.generation.split("-", 1)[0]) if manifest else 0
        generation = f"{previous + 1:06d}-{uuid.uuid4().hex[:8]}"
        files = self.store.write_generation(month, generation, table, self.rows_per_file)
        # 4. Athena's switch
        prefix = generation_prefix(month, generation)
        if self.catalog is not None:
            self.catalog.point(month, prefix)
        # 5. the readers' switch: the absorbed objects are those read in step 2
        absorbed = {**(manifest.absorbed if manifest else {}), **{k: live[k] for k in selection.live}}
        self.store.write_manifest(Manifest(month, generation, files, absorbed, table.num_rows, self.clock()))
        log.info("compacted %s: %d objects into %d file(s), %d rows, generation %s",
                 month, len(selection.compacted) + len(selection.live), len(files), table.num_rows, generation)
        return MonthCompacted(month, generation, len(selection.compacted) + len(selection.live), len(files),
                              table.num_rows)

    def collect(self) -> int:
        """6. Delete what manifests older than the grace period replaced; returns how many objects."""
        live = self.store.live_objects()
        stored = self.store.list_keys(COMPACTED_PREFIX)
        doomed: list[str] = []
        for month, manifest in self.store.manifests().items():
            generations = [k for k in stored if k.startswith(f"{COMPACTED_PREFIX}{PARTITION}={month}/generation=")]
            doomed += garbage(manifest, live.get(month, {}), generations, self.clock(), self.grace_seconds)
        self.store.delete(doomed)
        if doomed:
            log.info("deleted %d objects replaced more than %g s ago", len(doomed), self.grace_seconds)
        return len(doomed)


def compactor(settings: Settings, store: ResultStore) -> Compactor:
    """The compactor of the configured bucket and catalog."""
    catalog = Catalog(aws.client("glue", settings), settings.glue_database, settings.glue_table,
                      settings.bucket) if settings.glue_catalog else None
    return Compactor(store, catalog, settings.compact_grace_seconds)
