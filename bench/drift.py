"""``python -m bench.drift``: choose the drift detector on 2016, and measure drift-triggered retraining.

Outside the stream, with the project's own features, models, weighting, detectors
(:mod:`core.drift`) and retrain schedule (:mod:`training.schedule`), as ``bench.selection``
replays them: the batch model is refitted at every retrain on every hour before it
(no promotion gate), the online model and the weighting predict then learn every hour from
the start of the data, the online and served detectors watch from the start of the data
and the batch detector from the first champion, as in the stream.

1. **False alarms**: each detector setting of the grid over the period, nothing injected:
   detections per station-month, per model.
2. **Detection delay**: the same period with a lane closure injected (volumes × ``--factor``
   from 08:00 on the 15th of every other month, each on its own): event hours from the
   closure to the first detection, per model.
3. **The trigger**: with the chosen setting, the schedule without and with drift retrains,
   over the period (nothing injected) and over the two weeks after each injected closure:
   MAE of the batch and served predictions.

    python -m bench.drift                                          # 2016: choose
    python -m bench.drift --start 2017-01-01 --end 2018-09-30 --no-grid   # the trigger on the test period
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

#: Page-Hinkley settings tried: the error increase tolerated per hour and the cumulative increase that is a drift.
DELTAS = (0.01, 0.02, 0.04, 0.08)
THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
CLOSURE_WEEKS = 2


@dataclass
class Replay:
    """The period's hours with everything the models and detectors need, in stream order."""

    rows: list[dict]
    X: object
    y: np.ndarray
    times: np.ndarray
    hours: list[int]


def build(records) -> Replay:
    from core.features import stream_features, to_frame

    kept, rows = zip(*stream_features(records), strict=True)
    return Replay(list(rows), to_frame(rows), np.array([r.traffic_volume for r in kept], dtype=float),
                  np.array([r.local_time for r in kept]), [r.wall_clock_hour for r in kept])


def closed(records, start: datetime, factor: float, until: datetime | None = None) -> list:
    """``records`` with every volume from ``start`` (until ``until``, or on) multiplied by
    ``factor``: a lane closure."""
    return [r.model_copy(update={"traffic_volume": int(round(r.traffic_volume * factor))})
            if r.local_time >= start and (until is None or r.local_time < until) else r for r in records]


def closure_starts(start: datetime, end: datetime) -> list[datetime]:
    """08:00 on the 15th of every other month (February, April, ...), where the closure's
    weeks fit within [start, end)."""
    return [datetime(y, m, 15, 8) for y in range(start.year, end.year + 1) for m in range(2, 13, 2)
            if start <= datetime(y, m, 15, 8) and datetime(y, m, 15, 8) + timedelta(weeks=CLOSURE_WEEKS) <= end]


def batch_predictions(replay: Replay, start: datetime, end: datetime, schedule, trees: int, detector=None,
                      fitted: dict | None = None) -> tuple[np.ndarray, list]:
    """The batch model's predictions over [start, end), retrained as ``schedule`` says; the
    retrains made, as (cutoff, trigger). With a drift schedule, ``detector`` (a station's
    :class:`core.drift.ErrorDrift`, as the stream has it at ``start``) watches the batch
    errors hour by hour. ``fitted`` caches models by cutoff between runs on the same hours."""
    from core.batch_model import build_pipeline, sized
    from training.schedule import CADENCE, Retrain

    X, y, times = replay.X, replay.y, replay.times
    prediction = np.full(len(y), np.nan)
    retrains, last = [], start
    drift_times: list[datetime] = []
    while last < end:
        model = fitted.get(last) if fitted is not None else None
        if model is None:
            model = build_pipeline(**sized(trees)).fit(X[times < last], y[times < last])
            if fitted is not None:
                fitted[last] = model
        window = (times >= last) & (times < min(last + schedule.cadence, end))
        positions = np.flatnonzero(window)
        if positions.size:
            prediction[positions] = model.predict(X.iloc[positions])
        following = None
        for i in positions:
            if detector is not None and schedule.drift and detector.update(y[i], {"batch": prediction[i]}):
                drift_times.append(times[i])
            due = schedule.next(last, times[i], drift_times)
            if due is not None and due.trigger == "drift":
                following = due
                prediction[positions[positions >= i]] = np.nan  # hours from the cutoff on: the new model's
                break
        if following is None:
            following = Retrain(min(last + schedule.cadence, end), CADENCE)
        if following.cutoff < end:
            retrains.append((following.cutoff, following.trigger))
        last = following.cutoff
    return prediction, retrains


def online_and_served(replay: Replay, batch: np.ndarray, settings_grid=(), start: datetime | None = None,
                      keep_at: tuple = ()) -> tuple[np.ndarray, np.ndarray, dict]:
    """The online and served predictions of every hour, and for each detector setting the
    detections of each model from ``start`` on (online and served watched from the first
    hour, batch from ``start``); ``keep_at`` gives hours at which each setting's detectors
    are copied, to continue from there on other hours."""
    from core.drift import ErrorDrift
    from core.ensemble import Combiner
    from core.online_model import OnlineModel

    online, combiner = OnlineModel(), Combiner()
    online_pred, served = np.empty(len(replay.y)), np.empty(len(replay.y))
    watchers = [ErrorDrift(s) for s in settings_grid]
    detections = {s: {m: [] for m in ("batch", "online", "served")} for s in settings_grid}
    kept: dict = {}
    pending = sorted(keep_at)
    for i, features in enumerate(replay.rows):
        while pending and replay.times[i] >= pending[0]:
            kept[pending.pop(0)] = [copy.deepcopy(w) for w in watchers]
        b = None if np.isnan(batch[i]) else float(batch[i])
        actual = replay.y[i]
        online_pred[i] = online.predict_then_learn(features, actual)
        served[i] = combiner.predict_then_learn(actual, b, online_pred[i], replay.hours[i])
        in_period = start is None or replay.times[i] >= start
        predictions = {"batch": b if in_period else None, "online": online_pred[i], "served": served[i]}
        for setting, watcher in zip(settings_grid, watchers, strict=True):
            for model, _ in watcher.update(actual, predictions):
                if in_period:
                    detections[setting][model].append(replay.times[i])
    return online_pred, served, {"detections": detections, "kept": kept}


def main(argv: list[str] | None = None) -> int:
    from core import dataset
    from core.batch_model import score
    from core.config import Settings
    from core.drift import CHOSEN, DetectorSettings, ErrorDrift
    from training.schedule import Schedule

    parser = argparse.ArgumentParser(prog="python -m bench.drift", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2016-01-01")
    parser.add_argument("--end", default="2016-12-31")
    parser.add_argument("--factor", type=float, default=0.6, help="the closure's volume factor")
    parser.add_argument("--no-grid", action="store_true", help="only the chosen setting")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each table as soon as it is known: the sections take minutes
    began = time.monotonic()
    settings = Settings.from_env()
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end) + timedelta(days=1)
    records = dataset.load_records(args.data, settings.data_path, settings.cache_dir, settings.station_id, None, end)
    cadence = Schedule(timedelta(days=settings.retrain_every_days), False, timedelta(hours=settings.drift_settle_hours),
                       timedelta(days=settings.drift_min_spacing_days))
    triggered = Schedule(cadence.cadence, True, cadence.settle, cadence.spacing)
    grid = [CHOSEN] if args.no_grid else [DetectorSettings(delta=d, threshold=t) for d in DELTAS for t in THRESHOLDS]
    if CHOSEN not in grid:
        grid.append(CHOSEN)
    months = (end - start).days / 30.44
    closures = closure_starts(start, end)

    base = build(records)
    fitted: dict = {}
    batch, retrains = batch_predictions(base, start, end, cadence, settings.batch_trees, fitted=fitted)
    online, served, watched = online_and_served(base, batch, grid, start, keep_at=tuple(closures))
    period = (base.times >= start) & (base.times < end)
    print(f"{args.start} .. {args.end}: {int(period.sum()):,} hours, {len(closures)} closures (volumes × {args.factor:g}), "
          f"retrain every {settings.retrain_every_days:g} days, {settings.batch_trees} trees per member\n")

    # -- 1 and 2: false alarms and delays, per setting ----------------------------------------
    delays = {s: {m: [] for m in ("batch", "online", "served")} for s in grid}
    shifted: dict = {}
    for closure in closures:
        replay = build(closed(records, closure, args.factor))
        shifted[closure] = replay
        # The batch model fitted before the closure predicts its two weeks: how soon its errors
        # (and the others') show the closure.
        stop = closure + timedelta(weeks=CLOSURE_WEEKS)
        closure_batch = np.array(batch, copy=True)
        hours = np.flatnonzero((replay.times >= closure) & (replay.times < stop))
        last_cutoff = max([start] + [c for c, _ in retrains if c <= closure])
        closure_batch[hours] = fitted[last_cutoff].predict(replay.X.iloc[hours])
        online_c, served_c, _ = online_and_served(replay, closure_batch)
        for setting, watcher in zip(grid, watched["kept"][closure], strict=True):
            watcher = copy.deepcopy(watcher)
            found: dict = {}
            for i in hours:
                b = closure_batch[i]
                for model, _ in watcher.update(replay.y[i], {"batch": b, "online": online_c[i], "served": served_c[i]}):
                    found.setdefault(model, (replay.times[i] - closure).total_seconds() / 3600)
            for model in delays[setting]:
                delays[setting][model].append(found.get(model, float("inf")))

    def fmt(values):
        finite = [v for v in values if v != float("inf")]
        missed = len(values) - len(finite)
        text = f"{np.median(finite):.0f} / {max(finite):.0f}" if finite else "-"
        return text + (f" ({missed} missed)" if missed else "")

    print("| delta | threshold | false alarms / station-month: batch, online, served "
          "| hours to detection (median / max): batch | online | served |")
    print("|---:|---:|---|---|---|---|")
    for setting in grid:
        alarms = ", ".join(f"{len(watched['detections'][setting][m]) / months:.2f}" for m in ("batch", "online", "served"))
        mark = " (chosen)" if setting == CHOSEN else ""
        print(f"| {setting.delta:g} | {setting.threshold:g}{mark} | {alarms} | "
              + " | ".join(fmt(delays[setting][m]) for m in ("batch", "online", "served")) + " |")

    # -- 3: the trigger, over the period and after each closure ----------------------------------
    batch_t, retrains_t = batch_predictions(base, start, end, triggered, settings.batch_trees, ErrorDrift(CHOSEN),
                                            fitted)
    _, served_t, _ = online_and_served(base, batch_t)
    print(f"\n| {args.start} .. {args.end}, nothing injected | retrains (drift) | batch MAE | served MAE |")
    print("|---|---:|---:|---:|")
    for name, b, s, r in (("cadence", batch, served, retrains), ("cadence + drift", batch_t, served_t, retrains_t)):
        print(f"| {name} | {len(r)} ({sum(t == 'drift' for _, t in r)}) | {score(base.y[period], b[period]).mae:.1f} | "
              f"{score(base.y[period], s[period]).mae:.1f} |")

    print(f"\n| closure | hours to the drift retrain | MAE over the {CLOSURE_WEEKS} weeks after: cadence, batch | served "
          "| cadence + drift, batch | served |")
    print("|---|---:|---:|---:|---:|---:|")
    for closure, replay in shifted.items():
        stop = closure + timedelta(weeks=CLOSURE_WEEKS)
        window = (replay.times >= closure) & (replay.times < stop)
        scores, promoted = [], "-"
        for schedule in (cadence, triggered):
            # Models fitted before the closure are shared with the undisturbed run; later ones are not.
            models = {cutoff: model for cutoff, model in fitted.items() if cutoff <= closure}
            b, r = batch_predictions(replay, start, stop, schedule, settings.batch_trees,
                                     ErrorDrift(CHOSEN), models)
            _, s, _ = online_and_served(replay, b)
            scores += [score(replay.y[window], b[window]).mae, score(replay.y[window], s[window]).mae]
            drift_retrains = [c for c, t in r if t == "drift" and c >= closure]
            if schedule.drift and drift_retrains:
                promoted = f"{(drift_retrains[0] - closure).total_seconds() / 3600:.0f}"
        print(f"| {closure:%Y-%m-%d} | {promoted} | " + " | ".join(f"{v:.1f}" for v in scores) + " |")
    print(f"\n{time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
