"""``python -m bench.accuracy``: the two models and their combination over 2017-01 .. 2018-09.

Trains on the hours before 2017 and registers that model as champion, then replays
2017-01-01 .. 2018-09-30 through the real producer, stream and consumer on the embedded
stack (a moto server started here), retraining every 10 event-days (the product's
default) in lockstep with the replay (so the result does not depend on how fast this
machine retrains), and reads the predictions back from S3. The batch model trained once
is scored on the same hours and features, from the registry's first version.

Prints MAE, RMSE and R² for: the batch model trained once, the batch model with periodic
retraining (what the consumer served), the online model, the served prediction (both
weighted by their recent errors, :mod:`core.ensemble`) and, for reference, a fixed
weighted mean, overall, on holiday dates and per year.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.machine import describe
from core.config import ENVIRONMENT, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2017-01-01")
    parser.add_argument("--end", default="2018-09-30")
    parser.add_argument("--retrain-every-days", type=float, default=float(ENVIRONMENT["TRAFFIC_RETRAIN_EVERY_DAYS"]),
                        help="retraining cadence in event-days (default: the product's)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    from infra.emulator import free_port, start

    port = free_port()
    emulator = start(port, workdir / "moto.log")
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TRAFFIC_HOME": str(workdir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "TRAFFIC_RETRAIN_EVERY_DAYS": str(args.retrain_every_days),
    })
    if args.data:
        os.environ["TRAFFIC_DATA"] = args.data
    try:
        table, seconds = run(datetime.fromisoformat(args.start), datetime.fromisoformat(args.end).replace(hour=23))
    finally:
        emulator.terminate()
    print(describe())
    print(f"replayed {args.start} .. {args.end} through producer -> Kinesis (moto) -> consumer -> S3 in {seconds:.0f} s, "
          f"retraining every {args.retrain_every_days:g} event-days, batch model of 2 × {Settings.from_env().batch_trees:,} trees\n")
    print(table)
    return 0


def run(start: datetime, end: datetime) -> tuple[str, float]:
    from adapters import aws, model_registry
    from core import dataset
    from core.config import Settings
    from adapters.result_store import ResultStore
    from consumer.__main__ import build
    from infra.provision import Provisioner
    from producer.kinesis_writer import KinesisWriter
    from producer.run import replay
    from training import fit as fitting
    from training.jobs import Retrainer, train_initial

    began = time.monotonic()
    settings = Settings.from_env()
    Provisioner(settings).create(with_iam=False)
    store = ResultStore(aws.client("s3", settings), settings.bucket)
    v1 = train_initial(settings, store, None, start)
    records = dataset.load_records(None, settings.data_path, settings.cache_dir, settings.station_id, start, end)
    consumer = build(settings, track=False)
    writer = KinesisWriter(aws.client("kinesis", settings), settings.stream_name)
    retrainer = Retrainer(settings, store)
    span = timedelta(days=settings.retrain_every_days)
    boundary, i, retrains, promoted = start + span, 0, 0, 0
    while i < len(records):
        j = i
        while j < len(records) and records[j].local_time < boundary:
            j += 1
        replay(records[i:j], writer, None, show_progress=False)
        while consumer.stats.records < j:  # the consumer catches up with this span before retraining
            if not consumer.poll():
                time.sleep(0.02)
        outcome = retrainer.step()
        if outcome is not None:
            retrains += 1
            promoted += outcome.promoted
            consumer.champion.refresh(force=True)
        boundary += span
        i = j

    rows = store.read_predictions()
    everything = [r for r in dataset.load_records(None, settings.data_path, settings.cache_dir, settings.station_id)
                  if r.local_time <= end]
    data = fitting.Dataset.from_records(everything)
    window = data.between(start, end + timedelta(hours=1))
    once = pd.Series(model_registry.load_version(settings, v1).predict(data.X[window]),
                     index=[r.event_id for r in everything if start <= r.local_time <= end])
    rows["once_prediction"] = once.reindex(rows["event_id"]).to_numpy()
    holidays = {r.local_time.date() for r in everything if r.holiday is not None}
    rows["is_holiday"] = pd.to_datetime(rows["event_date"]).dt.date.isin(holidays)
    rows["year"] = rows["event_date"].str[:4]
    seconds = time.monotonic() - began
    return report(rows, retrains, promoted), seconds


def report(rows: pd.DataFrame, retrains: int, promoted: int) -> str:
    from core.batch_model import score
    from core.ensemble import PRIOR_BATCH_WEIGHT, fixed_mean

    batch, online = rows["batch_prediction"].astype(float), rows["online_prediction"].astype(float)
    columns = {
        "batch, trained once": rows["once_prediction"].astype(float),
        f"batch, retrained ({promoted}/{retrains} promoted)": batch,
        "online (River)": online,
        "served (weights + residual)": rows["served_prediction"].astype(float),
        f"fixed {PRIOR_BATCH_WEIGHT:g} batch + {1 - PRIOR_BATCH_WEIGHT:g} online": fixed_mean(batch, online),
    }
    segments = {"all hours": np.ones(len(rows), bool), "holiday dates": rows["is_holiday"].to_numpy()}
    for year in sorted(rows["year"].unique()):
        segments[year] = (rows["year"] == year).to_numpy()
    lines = [f"| {'model':<36} | {'segment':<13} | {'hours':>6} | {'MAE':>6} | {'RMSE':>6} | {'R²':>6} |",
             f"|{'-' * 38}|{'-' * 15}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|"]
    for name, prediction in columns.items():
        prediction = np.asarray(prediction, dtype=float)
        for segment, mask in segments.items():
            s = score(rows["traffic_volume"].to_numpy()[mask], prediction[mask])
            lines.append(f"| {name:<36} | {segment:<13} | {s.n:>6,} | {s.mae:>6.1f} | {s.rmse:>6.1f} | {s.r2:>6.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
