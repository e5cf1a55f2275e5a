"""``python -m bench.selection``: the models and their weighting over one period, in seconds.

The quick loop for choosing features and models on data before 2017: the project's own
feature, batch-model, online-model and weighting code, replayed over the dataset in
stream order outside the stream (no emulator, no registry). The batch model is fitted on
every hour before the period and refitted every ``--retrain-every-days`` on every hour
before that day, without the promotion gate; the online model and the weights predict
then learn every hour from the start of the data, as the consumer's warm start does.
``bench.accuracy`` is the authoritative, end-to-end measure; on 2017-2018 this replay
gives the same online and served MAE as it, to 0.1.

    python -m bench.selection --start 2016-01-01 --end 2016-12-31      # the validation year
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from core import dataset
    from core.batch_model import build_pipeline, score, sized
    from core.config import ENVIRONMENT, Settings
    from core.ensemble import Combiner
    from core.features import stream_features, to_frame
    from core.online_model import OnlineModel

    parser = argparse.ArgumentParser(prog="python -m bench.selection", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2016-01-01")
    parser.add_argument("--end", default="2016-12-31")
    parser.add_argument("--retrain-every-days", type=float, default=float(ENVIRONMENT["TRAFFIC_RETRAIN_EVERY_DAYS"]))
    args = parser.parse_args(argv)
    began = time.monotonic()
    settings = Settings.from_env()
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end) + timedelta(days=1)
    records = dataset.load_records(args.data, settings.data_path, settings.cache_dir, settings.station_id, None, end)

    kept, rows = zip(*stream_features(records), strict=True)
    X, y = to_frame(rows), np.array([r.traffic_volume for r in kept], dtype=float)
    times = np.array([r.local_time for r in kept])

    batch = np.full(len(y), np.nan)
    cutoff, span = start, timedelta(days=args.retrain_every_days)
    while cutoff < end:
        until = min(cutoff + span, end)
        window = (times >= cutoff) & (times < until)
        if window.any():
            model = build_pipeline(**sized(settings.batch_trees)).fit(X[times < cutoff], y[times < cutoff])
            batch[window] = model.predict(X[window])
        cutoff = until

    online, combiner = OnlineModel(), Combiner()
    online_pred, served = np.empty(len(y)), np.empty(len(y))
    for i, features in enumerate(rows):
        b = None if np.isnan(batch[i]) else float(batch[i])
        online_pred[i] = online.predict_then_learn(features, y[i])
        hour = kept[i].wall_clock_hour
        served[i] = combiner.predict_then_learn(y[i], b, online_pred[i], hour)

    period = (times >= start) & (times < end)
    print(f"{args.start} .. {args.end}: {int(period.sum()):,} hours, batch refitted every {args.retrain_every_days:g} days, "
          f"{settings.batch_trees:,} trees per member, {time.monotonic() - began:.0f} s\n")
    print("| model | MAE | RMSE | R² |\n|---|---:|---:|---:|")
    for name, prediction in (("batch", batch), ("online", online_pred), ("served", served)):
        s = score(y[period], prediction[period])
        print(f"| {name} | {s.mae:.1f} | {s.rmse:.1f} | {s.r2:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
