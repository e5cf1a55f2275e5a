"""``python -m monitor watch``: each row that lands, as one line with the served prediction."""

from __future__ import annotations

import threading

import pandas as pd

from monitor.__main__ import WATCH_HEADER, watch, watch_line


def _row(**changes) -> dict:
    row = {"event_time": "2017-01-01T08:00:00-06:00", "station_id": "301", "traffic_volume": 1234,
           "served_prediction": 1201.4, "batch_prediction": 1190.2, "online_prediction": 1250.0,
           "batch_model_version": "3"}
    return {**row, **changes}


class Bucket:
    """The part of a ResultStore that watch reads: keys, and the rows of an object."""

    bucket = "predictions"

    def __init__(self, objects: dict[str, list[dict]]) -> None:
        self.objects = objects

    def list_keys(self, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]

    def read_prediction_objects(self, keys: list[str]) -> pd.DataFrame:
        return pd.DataFrame([row for key in keys for row in self.objects[key]])


def test_a_line_holds_the_hour_station_actual_served_batch_online_and_model_version():
    assert WATCH_HEADER.split() == ["event", "time", "station", "actual", "served", "batch", "online", "model"]
    line = watch_line(next(pd.DataFrame([_row()]).itertuples(index=False)))
    assert line.split() == ["2017-01-01", "08:00-06:00", "301", "1234", "1201", "1190", "1250", "v3"]
    for name in ("station", "actual", "served", "batch", "online"):  # numbers end under their column's name
        end = WATCH_HEADER.index(name) + len(name)
        assert line[end - 1] != " " and line[end] == " ", name
    assert line.index("v3") == WATCH_HEADER.index("model")


def test_a_prediction_missing_before_the_first_champion_reads_n_a():
    row = next(pd.DataFrame([_row(batch_prediction=None, batch_model_version=None)]).itertuples(index=False))
    assert watch_line(row).split()[5:] == ["n/a", "1250", "-"]


def test_only_rows_that_land_after_the_start_are_printed(capsys):
    bucket = Bucket({"predictions/old.parquet": [_row(traffic_volume=1)]})
    stop = threading.Event()
    watching = threading.Thread(target=watch, args=(bucket, 0.01, stop), kwargs={"limit": 1})
    watching.start()
    try:
        later = _row(event_time="2017-01-01T09:00:00-06:00")
        bucket.objects["predictions/new.parquet"] = [_row(traffic_volume=7), later]
        watching.join(30)
    finally:
        stop.set()
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == WATCH_HEADER
    assert [line.split()[:4] for line in lines[2:]] == [["2017-01-01", "08:00-06:00", "301", "7"],
                                                        ["2017-01-01", "09:00-06:00", "301", "1234"]]
