"""The replay loop: schedule, batch, put, record progress."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from core.schema import TrafficRecord, encode
from producer.kinesis_writer import MAX_RECORDS_PER_CALL, KinesisWriter
from producer.replay import offsets

log = logging.getLogger(__name__)


@dataclass
class ReplaySummary:
    records: int
    calls: int
    retried_entries: int
    throttled_entries: int
    seconds: float
    first_event: str | None
    last_event: str | None

    def table(self) -> str:
        rate = self.records / self.seconds if self.seconds else float("inf")
        lines = [
            ("records put", f"{self.records:,}"),
            ("PutRecords calls", f"{self.calls:,}"),
            ("entries retried", f"{self.retried_entries:,}"),
            ("  of which throttled", f"{self.throttled_entries:,}"),
            ("wall time", f"{self.seconds:.1f} s"),
            ("rate", f"{rate:,.0f} records/s"),
            ("event time", f"{self.first_event} .. {self.last_event}"),
        ]
        return "\n".join(f"{k:<22}{v}" for k, v in lines)


class Progress:
    """The last event id the stream acknowledged, so ``--resume`` continues after it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last_event_id(self) -> str | None:
        if not self.path.is_file():
            return None
        return json.loads(self.path.read_text())["last_event_id"]

    def save(self, record: TrafficRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last_event_id": record.event_id, "event_time": record.event_time.isoformat()}))
        tmp.replace(self.path)


def after(records: Sequence[TrafficRecord], event_id: str | None) -> Sequence[TrafficRecord]:
    if event_id is None:
        return records
    ids = [r.event_id for r in records]
    return records[ids.index(event_id) + 1 :] if event_id in ids else records


def replay(
    records: Sequence[TrafficRecord],
    writer: KinesisWriter,
    speed: float | None,
    progress: Progress | None = None,
    max_gap_hours: float = 1.0,
    show_progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    due = offsets([r.event_time for r in records], speed, max_gap_hours)
    started = clock()
    bar = tqdm(total=len(records), unit="rec", disable=not show_progress, smoothing=0.1, mininterval=0.5)
    i = 0
    while i < len(records):
        wait = started + due[i] - clock()
        if wait > 0:
            sleep(wait)
        now = clock() - started
        j = i
        while j < len(records) and j - i < MAX_RECORDS_PER_CALL and due[j] <= now:
            j += 1
        j = max(j, i + 1)
        writer.put([{"Data": encode(r), "PartitionKey": r.station_id} for r in records[i:j]])
        writer.metrics.newest_event.set(records[j - 1].event_time.timestamp())
        if progress is not None:
            progress.save(records[j - 1])
        bar.update(j - i)
        bar.set_postfix_str(f"{records[j - 1].local_time:%Y-%m-%d %H:00}")
        i = j
    bar.close()
    s = writer.stats
    return ReplaySummary(
        records=len(records),
        calls=s.calls,
        retried_entries=s.retried_entries,
        throttled_entries=s.throttled_entries,
        seconds=clock() - started,
        first_event=records[0].event_time.isoformat() if records else None,
        last_event=records[-1].event_time.isoformat() if records else None,
    )
