"""Everything the system has seen, read back from the bucket as records in stream order."""

from __future__ import annotations

import pandas as pd

from adapters.result_store import ResultStore
from core.results import record_from_row
from core.schema import STATION_TZ, TrafficRecord


def rows_to_records(rows: pd.DataFrame) -> list[TrafficRecord]:
    """Records of result/history rows, one per event id, in (station, event time) order."""
    if rows.empty:
        return []
    rows = rows.drop_duplicates("event_id", keep="last")
    rows = rows.assign(_t=pd.to_datetime(rows["event_time"], utc=True)).sort_values(["station_id", "_t"], kind="stable")
    return [record_from_row(row) for row in rows.drop(columns="_t").to_dict("records")]


class Corpus:
    """History rows plus prediction rows, kept in memory and topped up incrementally."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.history = store.read_history()
        self.predictions = store.read_new_predictions()

    def refresh(self) -> int:
        fresh = self.store.read_new_predictions()
        if not fresh.empty:
            self.predictions = pd.concat([self.predictions, fresh], ignore_index=True)
        return len(fresh)

    def latest_local_time(self) -> pd.Timestamp | None:
        if self.predictions.empty:
            return None
        times = pd.to_datetime(self.predictions["event_time"], utc=True).dt.tz_convert(STATION_TZ.key)
        return times.max().tz_localize(None)

    def records(self) -> list[TrafficRecord]:
        frames = [f for f in (self.history, self.predictions) if not f.empty]
        return rows_to_records(pd.concat(frames, ignore_index=True)) if frames else []
