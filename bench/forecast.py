"""``python -m bench.forecast``: the served intervals' coverage and width, and true next-hour forecasts against the stream's rows.

In stream order, with the project's own station state: each record goes through
:func:`core.processing.process_batch` (one record a call, as the consumer would process it),
and just before it, the API's answer at that moment, :func:`core.forecast.next_hour` and
:func:`core.forecast.complete`: the forecast of the next hour, made without its weather (the
last hour's stands in), its holiday from the calendar. The batch model is refitted every
``TRAFFIC_RETRAIN_EVERY_DAYS`` on every hour before (no promotion gate, as ``bench.selection``
and ``bench.drift`` replay it); the online model, the weighting and the intervals learn
from the first hour of the data, as after a warm start.

1. **Intervals** (:class:`core.intervals.ConformalBand`): beside the stream's own band,
   one per window of :data:`WINDOWS`, fed the same served errors. Empirical coverage and
   mean width per level, overall, on holiday dates and per year, on the selection years
   (``--choose-until``, default: before 2017) and after. Chosen: the narrowest window on the
   selection years whose coverage is within ±2 points of nominal overall with no segment
   below nominal − 10, at every level.
2. **Forecast against nowcast**: on the hours after ``--choose-until``, the MAE of the batch,
   online and served predictions, and the served interval's coverage and width, overall, on
   holiday dates and per year, for the stream's rows (made with the hour's own weather), for
   the forecasts made an hour ahead, and for the same forecasts without the holiday calendar
   (a holiday's first hour forecast as an ordinary one): what the calendar is worth.

    python -m bench.forecast                      # 2016 to choose, 2017-01 .. 2018-09 to report
    python -m bench.forecast --start 2017-01-01   # forecasts only (no window chosen), 2017-01 .. 2018-09
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np

#: Calibration windows compared, in hours: one week to two months.
WINDOWS = (168, 336, 720, 1440)


class Precomputed:
    """The batch model as :func:`process_batch` sees it, for one record predicted in advance (in one call for many)."""

    def __init__(self, version: str) -> None:
        self.version, self.value = version, None

    def predict(self, frame):
        return [self.value]


def main(argv: list[str] | None = None) -> int:
    from core import dataset, forecast
    from core.batch_model import build_pipeline, score, sized
    from core.config import Settings
    from core.features import to_frame, training_frame
    from core.intervals import LEVELS, ConformalBand, column_names
    from core.processing import RawRecord, StationState, process_batch
    from core.schema import encode

    from bench.machine import describe

    parser = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2016-01-01", help="the first hour predicted by a batch model")
    parser.add_argument("--choose-until", default="2017-01-01", help="intervals are chosen on the hours before")
    parser.add_argument("--end", default="2018-09-30")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    began = time.monotonic()
    settings = Settings.from_env()
    start, split = datetime.fromisoformat(args.start), datetime.fromisoformat(args.choose_until)
    end = datetime.fromisoformat(args.end) + timedelta(days=1)
    records = [r for r in dataset.load_records(args.data, settings.data_path, settings.cache_dir, settings.station_id)
               if r.local_time < end]
    holidays = {r.local_time.date() for r in records if r.holiday is not None}
    span = timedelta(days=settings.retrain_every_days)

    states: dict[str, StationState] = {}
    bands = {w: ConformalBand(window=w) for w in WINDOWS}
    seen: dict[str, list] = defaultdict(list)  # per kind of prediction: (record, predictions...) rows
    warm = [r for r in records if r.local_time < start]
    warmed = process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(warm)], states, None, "t").rows
    for record, row in zip(warm, warmed, strict=True):  # the other windows learn the warm-up's errors too
        for band in bands.values():
            band.learn(float(record.traffic_volume), row["served_prediction"], record.local_time.hour)
    cutoff, version, skipped = start, 0, 0
    rest = [r for r in records if r.local_time >= start]
    i = 0
    while i < len(rest):
        window = [r for r in rest[i:] if r.local_time < cutoff + span]
        version += 1
        X, y, _ = training_frame([r for r in records if r.local_time < cutoff])
        model = build_pipeline(**sized(settings.batch_trees)).fit(X, y)
        # The window's features, predicted in two calls: the stream's (each hour's own
        # weather) and the forecasts'. Neither depends on the predictions, only on volumes.
        history = StationState.from_snapshot(states[settings.station_id].to_snapshot())
        now_rows, ahead_rows, ahead_records, plain_rows, plain_records = [], [], [], [], []
        for record in window:
            ahead = forecast.next_hour(history)
            ahead_records.append(ahead)
            ahead_rows.append(forecast.features(history, ahead))
            plain = without_holiday(ahead)
            plain_records.append(plain)
            plain_rows.append(ahead_rows[-1] if plain is ahead else forecast.features(history, plain))
            now_rows.append(forecast.features(history, record))
            history.history.observe(record)
            history.latest = record
        now_batch = model.predict(to_frame(now_rows))
        ahead_batch = model.predict(to_frame(ahead_rows))
        plain_batch = model.predict(to_frame(plain_rows))
        predictor = Precomputed(str(version))
        for k, record in enumerate(window):
            state = states[record.station_id]
            # The features computed above from a copy of this very history: the same inputs.
            ahead = forecast.complete(state, ahead_records[k], ahead_rows[k], float(ahead_batch[k]), predictor.version)
            plain = forecast.complete(state, plain_records[k], plain_rows[k], float(plain_batch[k]), predictor.version)
            predictor.value = float(now_batch[k])
            (row,) = process_batch([RawRecord(encode(record), "s", str(k))], states, predictor, "t").rows
            served = row["served_prediction"]
            extra = {w: band.bounds(served, record.local_time.hour) for w, band in bands.items()}
            for band in bands.values():
                band.learn(float(record.traffic_volume), served, record.local_time.hour)
            seen["nowcast"].append((record, row["batch_prediction"], row["online_prediction"], served,
                                    {k2: row[k2] for k2 in ahead.bounds}, extra))
            if ahead_records[k].wall_clock_hour == record.wall_clock_hour:
                seen["forecast"].append((record, ahead.batch, ahead.online, ahead.served, ahead.bounds, None))
                seen["no calendar"].append((record, plain.batch, plain.online, plain.served, plain.bounds, None))
            else:
                skipped += 1  # the hour forecast is missing from the data: nothing to score it on
        i += len(window)
        cutoff += span

    print(describe())
    print(f"{args.start} .. {args.end}: {len(seen['nowcast']):,} hours, the batch model refitted every "
          f"{settings.retrain_every_days:g} days ({version} fits, 2 × {settings.batch_trees} trees); "
          f"{skipped:,} forecasts were for hours missing from the data\n")

    def segments(rows, first, last):
        picked = [r for r in rows if first <= r[0].local_time < last]
        out = {"all hours": picked, "holiday dates": [r for r in picked if r[0].local_time.date() in holidays]}
        for year in sorted({r[0].local_time.year for r in picked}):
            out[str(year)] = [r for r in picked if r[0].local_time.year == year]
        return out

    def coverage(rows, bounds_of, level):
        lower, upper = column_names(level)
        known = [(r[0].traffic_volume, bounds_of(r)) for r in rows]
        known = [(y, b) for y, b in known if b[lower] is not None]
        if not known:
            return float("nan"), float("nan"), 0
        inside = np.mean([b[lower] <= y <= b[upper] for y, b in known]) * 100
        width = np.mean([b[upper] - b[lower] for _, b in known])
        return inside, width, len(known)

    chosen = None
    for title, first, last in (("selection", start, split), ("report", split, end)):
        if first >= last:
            continue
        parts = segments(seen["nowcast"], first, last)
        print(f"| {title}: window (hours) | level | " + " | ".join(f"{s}: coverage % / width" for s in parts) + " |")
        print("|---:|---:|" + "---|" * len(parts))
        meets = {}
        for w in WINDOWS:
            ok = True
            for level in LEVELS:
                cells = []
                for name, rows in parts.items():
                    cov, width, n = coverage(rows, lambda r, w=w: r[5][w], level)
                    cells.append(f"{cov:.1f} / {width:,.0f}")
                    nominal = level * 100
                    ok &= (abs(cov - nominal) <= 2) if name == "all hours" else (cov >= nominal - 10)
                print(f"| {w} | {level:.0%} | " + " | ".join(cells) + " |")
            meets[w] = ok
        if title == "selection":
            widths = {w: coverage(parts["all hours"], lambda r, w=w: r[5][w], 0.9)[1] for w in WINDOWS if meets[w]}
            chosen = min(widths, key=widths.get) if widths else None
            print(f"\nwithin the targets on {title}: {[w for w in WINDOWS if meets[w]]}; the narrowest: {chosen}\n")
        else:
            print()

    names = {"nowcast": "the stream's rows (the hour's weather)",
             "forecast": "forecast an hour ahead (the last hour's weather, the calendar's holiday)",
             "no calendar": "the same forecast without the holiday calendar"}
    print("| after " + args.choose_until + " | segment | hours | batch MAE | online MAE | served MAE | "
          + " | ".join(f"served {level:.0%}: coverage % / width" for level in LEVELS) + " |")
    print("|---|---|---:|---:|---:|---:|" + "---|" * len(LEVELS))
    for kind, name in names.items():
        for segment, rows in segments(seen[kind], split, end).items():
            y = np.array([r[0].traffic_volume for r in rows], dtype=float)
            maes = [score(y, np.array([np.nan if r[j] is None else r[j] for r in rows], dtype=float)).mae
                    for j in (1, 2, 3)]
            cells = [coverage(rows, lambda r: r[4], level) for level in LEVELS]
            print(f"| {name} | {segment} | {len(rows):,} | " + " | ".join(f"{m:.1f}" for m in maes) + " | "
                  + " | ".join(f"{c:.1f} / {w:,.0f}" for c, w, _ in cells) + " |")
    print(f"\n{time.monotonic() - began:.0f} s")
    return 0


def without_holiday(record):
    """``record`` without its holiday name: a holiday's first hour forecast as an ordinary hour (``record`` itself when it names none)."""
    from core.schema import TrafficRecord

    if record.holiday is None:
        return record
    return TrafficRecord.build(
        station_id=record.station_id, local_time=record.local_time, temp=record.temp, rain_1h=record.rain_1h,
        snow_1h=record.snow_1h, clouds_all=record.clouds_all, weather=[(w.main, w.description) for w in record.weather],
        holiday=None, traffic_volume=record.traffic_volume)


if __name__ == "__main__":
    sys.exit(main())
