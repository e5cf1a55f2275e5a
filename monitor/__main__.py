"""``python -m monitor watch|compare|reconcile|drift|compact``.

    python -m monitor watch                                   # follow new prediction objects
    python -m monitor compare                                 # batch vs online table + chart, logged to MLflow
    python -m monitor reconcile --start 2017-01-01 --end 2018-09-30 [--wait 600]
    python -m monitor drift [--window-days 10]                # the champion's data drift, logged to MLflow
    python -m monitor compact [--month 2017-01 ...]           # closed months into a few files (the trainer's identity)
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from datetime import datetime
from datetime import time as dtime
from pathlib import Path

import pandas as pd
from botocore.exceptions import EndpointConnectionError

from adapters import aws, model_registry
from adapters.result_store import PREDICTIONS_PREFIX, ResultStore
from consumer.streaming_run import RUN_TYPE_TAG
from core import dataset
from core.config import Settings
from core.errors import PermanentError
from core.results import event_time_of
from monitor import comparison
from monitor.compaction import compactor
from monitor.reconcile import Reconciliation, dead_letter_event_id, reconcile
from training.corpus import rows_to_records
from training.jobs import TRAIN_END_TAG

#: The ``traffic.run_type`` of the runs ``drift`` logs.
DATA_DRIFT_RUN = "data_drift"


#: The columns of :func:`watch_line`: the hour (station time), the actual volume, the served
#: prediction (what a user of the stream gets) and the two it combines, and the batch model's version.
WATCH_HEADER = f"{'event time':<22}  {'station':>7}  {'actual':>6}  {'served':>6}  {'batch':>6}  {'online':>6}  model"


def _volume(value) -> str:
    return "   n/a" if value is None or value != value else f"{value:6.0f}"


def watch_line(row) -> str:
    """One result row as a line under :data:`WATCH_HEADER`; a missing prediction (no champion yet) reads n/a."""
    hour = event_time_of(row._asdict()).isoformat(sep=" ", timespec="minutes")
    version = f"v{row.batch_model_version}" if row.batch_model_version else "-"
    return (f"{hour:<22}  {row.station_id:>7}  {row.traffic_volume:>6}  {_volume(row.served_prediction)}  "
            f"{_volume(row.batch_prediction)}  {_volume(row.online_prediction)}  {version}")


def watch(store: ResultStore, poll_seconds: float, stop: threading.Event, limit: int | None = None) -> int:
    seen = set(store.list_keys(PREDICTIONS_PREFIX))
    print(f"watching s3://{store.bucket}/{PREDICTIONS_PREFIX} ({len(seen)} objects already there); Ctrl-C to stop")
    print(WATCH_HEADER, flush=True)
    shown = 0
    while not stop.is_set() and (limit is None or shown < limit):
        fresh = [k for k in store.list_keys(PREDICTIONS_PREFIX) if k not in seen]
        for key in fresh:
            seen.add(key)
            rows = store.read_prediction_objects([key])
            for row in rows.itertuples(index=False):
                print(watch_line(row), flush=True)
            shown += 1
        if not fresh:
            stop.wait(poll_seconds)
    return shown


def compare(settings: Settings, store: ResultStore, out_dir: Path) -> str:
    rows = store.read_predictions()
    if rows.empty:
        return "no predictions in the bucket yet"
    text = comparison.table(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart_path = out_dir / "rolling_mae.png"
    comparison.chart(rows, chart_path)
    model_registry.connect(settings)
    run_id = model_registry.latest_streaming_run(settings)
    if run_id is not None:
        model_registry.log_comparison(run_id, comparison.scores(rows), text, chart_path)
    first, last = rows["event_time"].min(), rows["event_time"].max()
    return f"{first} .. {last}\n{text}\nchart: {chart_path}" + (f"\nlogged to MLflow run {run_id}" if run_id else "")


def drift(settings: Settings, store: ResultStore, window_days: float | None) -> str:
    """The champion's data drift (:mod:`monitor.data_drift`): its training rows against the
    latest ``window_days`` of stream rows after them (default: the retrain cadence).

    Logged to MLflow as a run of its own (``data-drift-<last day of the window>``), and the
    HTML written to ``TRAFFIC_HOME/reports/data_drift.html``; returns the table to print.
    """
    model_registry.connect(settings)
    found = model_registry.champion_version(settings)
    if found is None:
        raise PermanentError(f"no {model_registry.CHAMPION} version of {settings.model_name} in MLflow at "
                             f"{settings.tracking_uri}: run `python -m training train` first")
    served = store.read_predictions()
    if served.empty:
        raise PermanentError(f"no stream rows in s3://{store.bucket}/{PREDICTIONS_PREFIX} yet: "
                             "run the producer and the consumer first")
    version, tags = found
    train_end = datetime.fromisoformat(tags[TRAIN_END_TAG])
    window_days = settings.retrain_every_days if window_days is None else window_days
    # Imported once there is something to compare: the other subcommands need not load Evidently.
    from monitor import data_drift

    records = rows_to_records(pd.concat([store.read_history(), served], ignore_index=True))
    model = model_registry.load_version(settings, version)
    reference, current = data_drift.frames(records, served, model, version, train_end, window_days)
    if current.empty:
        raise PermanentError(f"no stream rows after {train_end:%Y-%m-%d %H:%M}, the end of the champion's "
                             f"(version {version}) training rows, yet: run the producer and the consumer further")
    if reference.empty:
        raise PermanentError(f"the rows version {version} was trained on are not in s3://{store.bucket}/ "
                             "(trained with --no-history?): nothing to compare the stream with")
    report = data_drift.build(reference, current)
    first, last = current["local_time"].min(), current["local_time"].max()
    run_id = model_registry.log_run(f"data-drift-{last:%Y%m%d}", {}, {},
                                    {RUN_TYPE_TAG: DATA_DRIFT_RUN, "model_version": version})
    data_drift.log_to_mlflow(report, run_id, {"model_version": version, "train_end": train_end.isoformat(),
                                              "window_days": window_days, "window_start": first.isoformat(),
                                              "window_end": last.isoformat()})
    path = settings.home / "reports" / "data_drift.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html, encoding="utf-8")
    return (f"version {version} (trained before {train_end:%Y-%m-%d %H:%M}, {report.reference_rows:,} hours) "
            f"against {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} ({report.current_rows:,} hours)\n"
            f"{report.table()}\nreport: {path}\nlogged to MLflow run {run_id}")


def account(settings: Settings, store: ResultStore, data: str | None, start: datetime | None, end: datetime | None) -> Reconciliation:
    produced = [r.event_id for r in dataset.load_records(data, settings.data_path, settings.cache_dir, settings.station_id, start, end)]
    rows = store.read_predictions()
    dead = [e for e in (dead_letter_event_id(d) for d in store.read_dead_letters()) if e]
    return reconcile(produced, rows["event_id"].tolist(), dead)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    w = sub.add_parser("watch", help="print prediction rows as their objects land")
    w.add_argument("--poll-seconds", type=float, default=1.0)
    c = sub.add_parser("compare", help="batch vs online MAE/RMSE/R², chart of rolling error, logged to MLflow")
    c.add_argument("--out", type=Path, default=None, help="folder for the chart (default: TRAFFIC_HOME/reports)")
    r = sub.add_parser("reconcile", help="prove produced = predicted + dead-lettered, no duplicate")
    r.add_argument("--data")
    r.add_argument("--start", type=datetime.fromisoformat)
    r.add_argument("--end", type=datetime.fromisoformat)
    r.add_argument("--wait", type=float, default=0.0, help="poll until balanced, at most this many seconds")
    d = sub.add_parser("drift", help="data drift of the champion's training rows against the latest stream rows, "
                                     "logged to MLflow")
    d.add_argument("--window-days", type=_positive, default=None,
                   help="days of stream rows to compare (default: TRAFFIC_RETRAIN_EVERY_DAYS)")
    k = sub.add_parser("compact", help="rewrite closed months into a few files and switch readers and the catalog "
                                       "to them")
    k.add_argument("--month", action="append", default=None,
                   help="compact this month (YYYY-MM) even if open or already compacted; repeatable")
    return parser


@aws.stops_on_permanent("monitor")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    try:
        return run(args, settings)
    except EndpointConnectionError as exc:
        print(f"cannot reach AWS at {exc.kwargs.get('endpoint_url', '?')}: start the embedded stack with `make up`, "
              "or check AWS_ENDPOINT_URL and the network", file=sys.stderr)
        return 2
    except dataset.DataUnavailable as exc:  # reconcile needs the dataset to know what was produced
        print(exc, file=sys.stderr)
        return 2


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = ResultStore(aws.client("s3", settings), settings.bucket)

    if args.action == "watch":
        stop = threading.Event()
        try:
            watch(store, args.poll_seconds, stop)
        except KeyboardInterrupt:
            pass
        return 0
    if args.action == "compare":
        print(compare(settings, store, args.out or settings.home / "reports"))
        return 0
    if args.action == "drift":
        print(drift(settings, store, args.window_days))
        return 0
    if args.action == "compact":
        done = compactor(settings, store).run(args.month)
        for month in done:
            print(f"{month.month}: {month.objects_before} objects -> {month.files} file(s), {month.rows:,} rows, "
                  f"generation {month.generation}")
        print(f"compacted {len(done)} month(s)")
        return 0
    end = args.end.replace(hour=23) if args.end and args.end.time() == dtime(0) else args.end
    deadline = time.monotonic() + args.wait
    while True:
        result = account(settings, store, args.data, args.start, end)
        if result.ok or time.monotonic() >= deadline:
            break
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    print(result.table())
    if result.missing:
        print("missing:", ", ".join(result.missing[:50]) + (" ..." if len(result.missing) > 50 else ""))
    if result.duplicates:
        print("duplicated:", ", ".join(result.duplicates[:50]))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
