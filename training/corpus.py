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
    """History rows plus prediction rows, kept in memory and topped up incrementally.

    Rows are converted to records once; a retraining cycle only converts what is new. The
    prediction rows are kept too, for what the stream served (:meth:`predictions`).
    """

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._records: dict[str, TrafficRecord] = {}
        self._latest: pd.Timestamp | None = None
        self._predictions: list[pd.DataFrame] = []
        self._add(store.read_history(), is_prediction=False)
        self._add(store.read_new_predictions(), is_prediction=True)

    def _add(self, rows: pd.DataFrame, is_prediction: bool) -> int:
        if rows.empty:
            return 0
        for record in rows_to_records(rows):
            self._records[record.event_id] = record
        if is_prediction:
            self._predictions.append(rows)
            times = pd.to_datetime(rows["event_time"], utc=True).dt.tz_convert(STATION_TZ.key)
            latest = times.max().tz_localize(None)
            self._latest = latest if self._latest is None else max(self._latest, latest)
        return len(rows)

    def refresh(self) -> int:
        return self._add(self.store.read_new_predictions(), is_prediction=True)

    def latest_local_time(self) -> pd.Timestamp | None:
        """The newest hour the stream has delivered (history does not count: it was never streamed)."""
        return self._latest

    def records(self) -> list[TrafficRecord]:
        return sorted(self._records.values(), key=lambda r: (r.station_id, r.event_time))

    def predictions(self) -> pd.DataFrame:
        """Every prediction row read so far, one per event id (the latest written)."""
        if not self._predictions:
            return self.store.read_prediction_objects([])
        if len(self._predictions) > 1:  # kept once per event id: a compacted month's rows are read again
            self._predictions = [pd.concat(self._predictions, ignore_index=True).drop_duplicates("event_id", keep="last")]
        return self._predictions[0].drop_duplicates("event_id", keep="last")
