"""``python -m bench.accuracy``: the two models and their combination over 2017-01 .. 2018-09, without and with the drift trigger.

Each run trains on the hours before its start and registers that model as champion, then
replays its hours through the real producer, stream and consumer on its own embedded
stack (a moto server started here), stepping the retrainer every ``--step-hours`` of event
time in lockstep with the replay (so the result does not depend on how fast this machine
retrains: each step waits for the consumer to catch up, then lets the retrainer's schedule,
:mod:`training.schedule`, decide), and reads the predictions and drift events back from S3.

1. **The test period** (``--start`` .. ``--end``), once per trigger of ``--triggers``:
   ``cadence`` (the product's default) and ``drift`` (cadence + drift retrains,
   ``TRAFFIC_DRIFT_RETRAIN=1``). Prints MAE, RMSE and R² of the batch model trained once
   (scored on the same hours and features, from the registry's first version), the batch
   model as retrained, the online model, the served prediction (:mod:`core.ensemble`) and a
   fixed weighted mean, overall, on holiday dates and per year; the served intervals'
   coverage and width in the same segments; then the triggers side by side with their
   retrains and drift events per station-month.
2. **An injected level shift** (``--shift-start`` .. ``--shift-end``, unless ``--no-shift``):
   the same replay with lane closures (volumes × ``--factor`` for two weeks from 08:00 on the
   15th of every other month), once per trigger. Per closure: event hours from the closure to
   each model's first drift event, to the first hour served by the drift retrain's promoted
   champion, and the batch and served MAE over the closure's two weeks under each trigger.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.machine import describe
from core.config import ENVIRONMENT, Settings
from core.schema import STATION_TZ

TRIGGERS = ("cadence", "drift")
MODELS = ("batch", "online", "served")


@dataclass
class Run:
    """What one replay left in its bucket and registry."""

    rows: pd.DataFrame
    #: Per retrain: its outcome and the first event hour the consumer served after it.
    retrains: list[tuple[object, datetime]]
    drift_events: list[dict]
    seconds: float
    #: The next hour's forecasts as the API makes them, from the committed state after each step.
    forecasts: pd.DataFrame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2017-01-01")
    parser.add_argument("--end", default="2018-09-30")
    parser.add_argument("--retrain-every-days", type=float, default=float(ENVIRONMENT["TRAFFIC_RETRAIN_EVERY_DAYS"]),
                        help="retraining cadence in event-days (default: the product's)")
    parser.add_argument("--triggers", default=",".join(TRIGGERS),
                        help="comma-separated: cadence (cadence only), drift (cadence + drift retrains)")
    parser.add_argument("--step-hours", type=float, default=6.0,
                        help="event hours replayed between two steps of the retrainer")
    parser.add_argument("--no-shift", action="store_true", help="skip the runs with injected closures")
    parser.add_argument("--no-test-period", action="store_true", help="only the runs with injected closures")
    parser.add_argument("--shift-start", default="2017-01-01")
    parser.add_argument("--shift-end", default="2017-12-31")
    parser.add_argument("--factor", type=float, default=0.6, help="the closures' volume factor")
    args = parser.parse_args(argv)
    triggers = [t.strip() for t in args.triggers.split(",") if t.strip()]
    if not triggers or set(triggers) - set(TRIGGERS):
        parser.error(f"--triggers: a comma-separated subset of {', '.join(TRIGGERS)}")
    sys.stdout.reconfigure(line_buffering=True)  # each table as soon as it is known: the runs take minutes
    if args.data:
        os.environ["TRAFFIC_DATA"] = args.data
    os.environ["TRAFFIC_RETRAIN_EVERY_DAYS"] = str(args.retrain_every_days)
    step = timedelta(hours=args.step_hours)
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end).replace(hour=23)

    print(describe())
    print(f"retraining every {args.retrain_every_days:g} event-days, the retrainer stepped every "
          f"{args.step_hours:g} event hours, batch model of 2 × {Settings.from_env().batch_trees:,} trees\n")
    runs = {}
    for trigger in [] if args.no_test_period else triggers:
        with embedded_stack(trigger):
            runs[trigger] = run(start, end, step)
        print(f"{args.start} .. {args.end}, {trigger}: replayed through producer -> Kinesis (moto) -> consumer -> S3 "
              f"in {runs[trigger].seconds:.0f} s\n")
        if trigger == triggers[0]:
            print(model_table(runs[trigger]) + "\n")
            print(interval_table(runs[trigger]) + "\n")
            print(forecast_table(runs[trigger], args.step_hours) + "\n")
    if runs:
        print(trigger_table(runs, f"{args.start} .. {args.end}, nothing injected") + "\n")

    if not args.no_shift:
        from bench.drift import CLOSURE_WEEKS, closure_starts

        shift_start = datetime.fromisoformat(args.shift_start)
        shift_end = datetime.fromisoformat(args.shift_end).replace(hour=23)
        closures = closure_starts(shift_start, shift_end + timedelta(hours=1))
        weeks = timedelta(weeks=CLOSURE_WEEKS)
        shifted = {}
        for trigger in triggers:
            with embedded_stack(trigger):
                shifted[trigger] = run(shift_start, shift_end, step, [(c, c + weeks) for c in closures], args.factor)
            print(f"{args.shift_start} .. {args.shift_end} with {len(closures)} closures (× {args.factor:g}), {trigger}: "
                  f"{shifted[trigger].seconds:.0f} s\n")
        print(trigger_table(shifted, f"{args.shift_start} .. {args.shift_end}, {len(closures)} closures") + "\n")
        print(closure_table(shifted, closures, weeks))
    return 0


@contextmanager
def embedded_stack(trigger: str) -> Iterator[Path]:
    """A fresh moto server, MLflow store and home for one run, the drift trigger as ``trigger`` says."""
    from infra.emulator import client_environment, free_port, start

    workdir = Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    port = free_port()
    emulator = start(port, workdir / "moto.log")
    saved = dict(os.environ)
    os.environ.update({
        **client_environment(port), "TRAFFIC_HOME": str(workdir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "TRAFFIC_DRIFT_RETRAIN": "1" if trigger == "drift" else "0",
    })
    try:
        yield workdir
    finally:
        emulator.terminate()
        os.environ.clear()
        os.environ.update(saved)


def run(start: datetime, end: datetime, step: timedelta,
        closures: list[tuple[datetime, datetime]] = (), factor: float = 1.0) -> Run:
    """Replay [start, end] (volumes × ``factor`` within each of ``closures``) and read back what it left."""
    from adapters import aws, model_registry
    from adapters.committed_state import CommittedStates
    from adapters.result_store import ResultStore
    from bench.drift import closed
    from consumer.__main__ import build
    from core import dataset
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
    for since, until in closures:
        records = closed(records, since, factor, until)
    consumer = build(settings, track=False)
    writer = KinesisWriter(aws.client("kinesis", settings), settings.stream_name)
    retrainer = Retrainer(settings, store)
    committed = CommittedStates(aws.client("dynamodb", settings), aws.client("s3", settings), settings.checkpoint_table,
                                settings.bucket, settings.app_name)
    boundary, i, retrains, forecasts = start + step, 0, [], []
    while i < len(records):
        j = i
        while j < len(records) and records[j].local_time < boundary:
            j += 1
        replay(records[i:j], writer, None, show_progress=False)
        while consumer.stats.records < j:  # the consumer catches up with this step before the retrainer looks
            if not consumer.poll():
                time.sleep(0.02)
        forecasts += next_hours(committed, consumer.champion)  # before a retrain: what was served then
        while (outcome := retrainer.step()) is not None:
            retrains.append((outcome, boundary))
            if outcome.promoted:
                consumer.champion.refresh(force=True)
        boundary += step
        i = j

    rows = store.read_predictions()
    # The batch model trained once, on the same (undisturbed) hours and features.
    everything = [r for r in dataset.load_records(None, settings.data_path, settings.cache_dir, settings.station_id)
                  if r.local_time <= end]
    data = fitting.Dataset.from_records(everything)
    window = data.between(start, end + timedelta(hours=1))
    once = pd.Series(model_registry.load_version(settings, v1).predict(data.X[window]),
                     index=[r.event_id for r in everything if start <= r.local_time <= end])
    rows["once_prediction"] = once.reindex(rows["event_id"]).to_numpy()
    holidays = {r.local_time.date() for r in everything if r.holiday is not None}
    rows["is_holiday"] = pd.to_datetime(rows["event_date"]).dt.date.isin(holidays)
    rows["year"] = pd.to_datetime(rows["event_date"]).dt.year.astype(str)
    rows["local_time"] = pd.to_datetime(rows["event_time"], utc=True).dt.tz_convert(STATION_TZ).dt.tz_localize(None)
    return Run(rows, retrains, store.read_drift_events(), time.monotonic() - began, pd.DataFrame(forecasts))


def next_hours(committed, champion) -> list[dict]:
    """Each station's forecast of the hour after its newest committed one, as ``GET
    /stations/{id}/forecast`` answers it (:mod:`serve.app`): the committed state read as the
    API reads it, the newest hour's weather, no holiday name."""
    from core import forecast

    committed.refresh()
    out = []
    for station_id, state in committed.stations.items():
        record = forecast.next_hour(state)
        if record is None:
            continue
        predicted = forecast.predict(state, record, champion)
        out.append({"station_id": station_id, "local_time": record.local_time, "batch": predicted.batch,
                    "online": predicted.online, "served": predicted.served, **predicted.bounds})
    return out


def model_table(result: Run) -> str:
    from core.batch_model import score
    from core.ensemble import PRIOR_BATCH_WEIGHT, fixed_mean

    rows = result.rows
    promoted = sum(outcome.promoted for outcome, _ in result.retrains)
    batch, online = rows["batch_prediction"].astype(float), rows["online_prediction"].astype(float)
    columns = {
        "batch, trained once": rows["once_prediction"].astype(float),
        f"batch, retrained ({promoted}/{len(result.retrains)} promoted)": batch,
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


def interval_table(result: Run) -> str:
    """The served intervals' empirical coverage and mean width, per level and segment (rows with an interval)."""
    from core.intervals import LEVELS, column_names

    rows = result.rows
    segments = {"all hours": np.ones(len(rows), bool), "holiday dates": rows["is_holiday"].to_numpy()}
    for year in sorted(rows["year"].unique()):
        segments[year] = (rows["year"] == year).to_numpy()
    lines = ["| served interval | " + " | ".join(f"{s}: coverage % / width" for s in segments) + " |",
             "|---|" + "---|" * len(segments)]
    y = rows["traffic_volume"].to_numpy(dtype=float)
    for level in LEVELS:
        lower, upper = (rows[c].to_numpy(dtype=float) for c in column_names(level))
        known = ~np.isnan(lower)
        cells = []
        for mask in segments.values():
            m = mask & known
            cells.append(f"{np.mean((lower[m] <= y[m]) & (y[m] <= upper[m])) * 100:.1f} / {np.mean(upper[m] - lower[m]):,.0f}")
        lines.append(f"| {level:.0%} ({int(known.sum()):,} rows) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def forecast_table(result: Run, step_hours: float) -> str:
    """Forecasts an hour ahead (the API's, from the committed state after each step) against
    the stream's own rows for the same hours: MAE per model and the served intervals' coverage
    and width, overall, on holiday dates and per year. Hours missing from the data are not scored."""
    from core.batch_model import score
    from core.intervals import LEVELS, column_names

    if result.forecasts.empty:
        return "no forecasts"
    rows = result.rows.set_index(["station_id", "local_time"])
    ahead = result.forecasts.set_index(["station_id", "local_time"])
    both = ahead.join(rows, how="inner", rsuffix="_row")
    y = both["traffic_volume"].to_numpy(dtype=float)
    segments = {"all hours": np.ones(len(both), bool), "holiday dates": both["is_holiday"].to_numpy(bool)}
    for year in sorted(both["year"].unique()):
        segments[year] = (both["year"] == year).to_numpy()
    lines = [f"Forecasts an hour ahead, from the committed state every {step_hours:g} event hours "
             f"({len(both):,} scored; {len(ahead) - len(both):,} were for hours missing from the data), "
             "against the stream's rows for the same hours:", "",
             "| | " + " | ".join(f"{s} ({int(m.sum()):,})" for s, m in segments.items()) + " |",
             "|---|" + "---|" * len(segments)]
    for model in MODELS:
        cells = []
        for mask in segments.values():
            forecast_mae = score(y[mask], both[model].to_numpy(dtype=float)[mask]).mae
            row_mae = score(y[mask], both[f"{model}_prediction"].to_numpy(dtype=float)[mask]).mae
            cells.append(f"{forecast_mae:.1f} / {row_mae:.1f}")
        lines.append(f"| {model} MAE: forecast / same hour | " + " | ".join(cells) + " |")
    for level in LEVELS:
        lower_name, upper_name = column_names(level)
        cells = []
        for mask in segments.values():
            pair = []
            for lower, upper in ((both[lower_name], both[upper_name]), (both[f"{lower_name}_row"], both[f"{upper_name}_row"])):
                lo, hi = lower.to_numpy(dtype=float)[mask], upper.to_numpy(dtype=float)[mask]
                known = ~np.isnan(lo)
                inside = (lo[known] <= y[mask][known]) & (y[mask][known] <= hi[known])
                pair.append(f"{np.mean(inside) * 100:.1f}")
            cells.append(" / ".join(pair))
        lines.append(f"| served {level:.0%} coverage %: forecast / same hour | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trigger_table(runs: dict[str, Run], title: str) -> str:
    """The triggers side by side: retrains, drift events per station-month, MAE overall and per year."""
    from core.batch_model import score

    years = sorted(next(iter(runs.values())).rows["year"].unique())
    lines = [f"| {title} | retrains (drift) | promoted | drift events / station-month: batch, online, served | "
             "batch MAE | served MAE | " + " | ".join(f"served {y}" for y in years) + " |",
             "|---|---:|---:|---|---:|---:|" + "---:|" * len(years)]
    for trigger, result in runs.items():
        rows, y = result.rows, result.rows["traffic_volume"].to_numpy()
        served = rows["served_prediction"].astype(float).to_numpy()
        station_months = len(rows) / (24 * 30.44)  # a row is a station-hour
        events = ", ".join(f"{sum(e['model'] == m for e in result.drift_events) / station_months:.2f}" for m in MODELS)
        drift = sum(outcome.trigger == "drift" for outcome, _ in result.retrains)
        per_year = [score(y[(rows["year"] == yr).to_numpy()], served[(rows["year"] == yr).to_numpy()]).mae for yr in years]
        lines.append(f"| {'cadence' if trigger == 'cadence' else 'cadence + drift'} | {len(result.retrains)} ({drift}) | "
                     f"{sum(o.promoted for o, _ in result.retrains)} | {events} | "
                     f"{score(y, rows['batch_prediction'].astype(float).to_numpy()).mae:.1f} | {score(y, served).mae:.1f} | "
                     + " | ".join(f"{v:.1f}" for v in per_year) + " |")
    return "\n".join(lines)


def closure_table(runs: dict[str, Run], closures: list[datetime], weeks: timedelta) -> str:
    """Per closure: hours to each model's first drift event and to the drift retrain's first
    served hour (under cadence + drift when it ran), and the two weeks' MAE under each trigger."""
    from core.batch_model import score

    watched = runs.get("drift") or next(iter(runs.values()))
    header = ["closure", "hours to drift event: batch", "online", "served", "hours to the drift retrain's champion"]
    for trigger in runs:
        name = "cadence" if trigger == "cadence" else "cadence + drift"
        header += [f"{name}: batch MAE", "served MAE"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def hours(since: datetime, moment: datetime | None) -> str:
        return "-" if moment is None else f"{(moment - since).total_seconds() / 3600:.0f}"

    for closure in closures:
        stop = closure + weeks
        cells = [f"{closure:%Y-%m-%d %H:%M}"]
        for model in MODELS:
            local = [datetime.fromisoformat(str(e["event_time"])).astimezone(STATION_TZ).replace(tzinfo=None)
                     for e in watched.drift_events if e["model"] == model]
            cells.append(hours(closure, min((t for t in local if closure <= t < stop), default=None)))
        served_from = [hour for outcome, hour in watched.retrains
                       if outcome.trigger == "drift" and outcome.promoted and closure <= outcome.cutoff < stop]
        cells.append(hours(closure, min(served_from, default=None)))
        for result in runs.values():
            rows = result.rows
            mask = ((rows["local_time"] >= closure) & (rows["local_time"] < stop)).to_numpy()
            y = rows["traffic_volume"].to_numpy()[mask]
            cells += [f"{score(y, rows['batch_prediction'].astype(float).to_numpy()[mask]).mae:.1f}",
                      f"{score(y, rows['served_prediction'].astype(float).to_numpy()[mask]).mae:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
