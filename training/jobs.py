"""The training jobs: the first fit from the dataset, and retraining on what the stream saw.

Both log a run to MLflow (parameters, holdout MAE/RMSE/R², the model with signature and
input example). The first fit becomes ``champion`` at once. A retrained candidate and the
current champion are both scored on the most recent ``TRAFFIC_HOLDOUT_DAYS``, hours neither
was fitted on; the candidate is refitted on every hour and becomes champion unless its
holdout MAE exceeds the champion's by more than ``TRAFFIC_PROMOTION_TOLERANCE`` (default
5 %): the two are nearly the same model, so a strict "must win" would reject retrains on a
week of noise, while the margin still stops a broken fit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from adapters import aws, model_registry
from adapters import metrics as metric_families
from adapters.metrics import TrainerMetrics
from adapters.result_store import DRIFT_PREFIX, ResultStore
from core import batch_model, dataset
from core.config import Settings
from core.errors import PermanentError
from core.processing import RawRecord, StationState, process_batch
from core.results import result_row
from core.schema import STATION_TZ, TrafficRecord, encode
from core.state_codec import dump_states
from monitor.compaction import Compactor
from training import fit as fitting
from training.corpus import Corpus
from training.schedule import CADENCE, Retrain, Schedule

log = logging.getLogger(__name__)

TRAIN_END_TAG = "train_end"
#: The tag of a retrain's run whose data-drift report failed, with the error.
DATA_DRIFT_ERROR_TAG = "data_drift_error"
#: The tag of a registered version's run whose SHAP explanations failed, with the error.
EXPLANATION_ERROR_TAG = "explanation_error"


def train_initial(
    settings: Settings,
    store: ResultStore | None,
    data_path: str | None,
    train_end: datetime,
    train_start: datetime | None = None,
) -> str:
    """Fit on the dataset's hours before ``train_end``, register it and make it champion."""
    records = dataset.load_records(data_path, settings.data_path, settings.cache_dir, settings.station_id, train_start, None)
    records = [r for r in records if r.local_time < train_end]
    if not records:
        raise ValueError(f"no records before {train_end:%Y-%m-%d}")
    result = fitting.fit(fitting.Dataset.from_records(records), train_end, settings.holdout_days,
                         **batch_model.sized(settings.batch_trees))
    model_registry.connect(settings)
    version = _register(settings, result, "initial", fitting.Dataset.from_records(records[-500:]).X)
    model_registry.promote(settings, version)
    if store is not None:
        # Retraining reads "all records seen so far" from the bucket alone: seed it with these.
        stamp = datetime.now().astimezone().isoformat()
        store.write_seed(dump_states(warm_start(records, stamp)))
        store.write_history(
            [
                result_row(r, batch_prediction=None, online_prediction=None, served_prediction=None,
                           batch_model_version=None, online_updates=0, shard_id="", sequence_number="",
                           processed_at=stamp)
                for r in records
            ]
        )
    log.info("version %s trained on %d hours, holdout MAE %.1f", version, result.n_train, result.holdout.mae)
    return version


def warm_start(records: list[TrafficRecord], stamp: str) -> dict[str, StationState]:
    """The stations' lag history and online model after learning ``records``, through the
    consumer's own processing path, so the stream starts where training stopped."""
    states: dict[str, StationState] = {}
    raws = [RawRecord(encode(r), "history", str(i)) for i, r in enumerate(records)]
    for i in range(0, len(raws), 1000):
        process_batch(raws[i : i + 1000], states, None, stamp)
    return states


def _register(settings: Settings, result: fitting.FitResult, kind: str, sample: pd.DataFrame, extra_metrics=None,
              extra_tags=None) -> str:
    params = {
        **{f"model.{k}": v for k, v in result.params.items()},
        "train_end": result.cutoff.isoformat(),
        "holdout_start": result.holdout_start.isoformat(),
        "n_train": result.n_train,
        "kind": kind,
    }
    metrics = {**result.holdout.as_metrics("holdout_"), "holdout_n": float(result.holdout.n), **(extra_metrics or {})}
    tags = {TRAIN_END_TAG: result.cutoff.isoformat(), "kind": kind, **(extra_tags or {})}
    version = model_registry.log_and_register(
        settings, result.model, sample, params, metrics, tags, run_name=f"{kind}-{result.cutoff:%Y%m%d}"
    )
    run_id = model_registry.version_run_id(settings, version)
    try:
        from training.explanations import log_explanations  # SHAP: seconds to load, only where models are registered

        log_explanations(run_id, result.model, sample)
    except Exception as exc:  # the model is what training is for: a failed explanation is a warning and a tag
        log.warning("explanations of version %s failed: %s", version, exc, exc_info=True)
        model_registry.tag_run(run_id, EXPLANATION_ERROR_TAG, f"{type(exc).__name__}: {exc}"[:5000])
    return version


@dataclass
class RetrainOutcome:
    cutoff: datetime
    candidate_mae: float
    champion_mae: float
    promoted: bool
    version: str | None
    #: What made it due: ``cadence`` or ``drift`` (:mod:`training.schedule`).
    trigger: str = CADENCE


class Retrainer:
    """Every ``retrain_every_days`` of event time, and early after a drift in the batch model's
    errors (:mod:`training.schedule`), retrain on all rows seen so far."""

    def __init__(self, settings: Settings, store: ResultStore, metrics: TrainerMetrics | None = None,
                 compactor: Compactor | None = None) -> None:
        self.settings = settings
        self.store = store
        #: Run after each retrain and whenever the stream enters a new month (the month it left
        #: is then closed, and the new one gets its catalog partition); None: never.
        self.compactor = compactor
        self._compacted_through: str | None = None
        self.corpus = Corpus(store)
        self.metrics = metrics or metric_families.trainer()
        model_registry.connect(settings)
        found = model_registry.champion_version(settings)
        if found is None:
            raise PermanentError(f"no {model_registry.CHAMPION} version of {settings.model_name} in MLflow at "
                                 f"{settings.tracking_uri}: run `python -m training train` first")
        self.metrics.champion_version.set(float(found[0]))
        self.last_cutoff = datetime.fromisoformat(found[1][TRAIN_END_TAG])
        self.span = timedelta(days=settings.retrain_every_days)
        self.schedule = Schedule(self.span, settings.drift_retrain, timedelta(hours=settings.drift_settle_hours),
                                 timedelta(days=settings.drift_min_spacing_days))
        #: Local event times of the batch model's drift detections, read from ``drift/`` as they land.
        self.drift_times: list[datetime] = []
        self._drift_keys: set[str] = set()
        self.outcomes: list[RetrainOutcome] = []

    def due(self) -> Retrain | None:
        """The retrain due by the stream's latest event hour, if any (:meth:`Schedule.next`)."""
        latest = self.corpus.latest_local_time()
        if latest is None:
            return None
        return self.schedule.next(self.last_cutoff, latest.to_pydatetime(), self.drift_times)

    def read_drift_events(self) -> None:
        """Add the batch model's drift detections in objects not read before."""
        fresh = [key for key in self.store.list_keys(DRIFT_PREFIX) if key not in self._drift_keys]
        if not fresh:
            return
        for event in self.store.read_drift_events(fresh):
            self.metrics.drift_events.labels(model=str(event["model"])).inc()
            if event["model"] == "batch":
                detected = datetime.fromisoformat(str(event["event_time"])).astimezone(STATION_TZ)
                self.drift_times.append(detected.replace(tzinfo=None))
        self._drift_keys.update(fresh)

    def step(self) -> RetrainOutcome | None:
        self.corpus.refresh()
        if self.schedule.drift:
            self.read_drift_events()
        latest = self.corpus.latest_local_time()
        if latest is not None and f"{latest:%Y-%m}" != self._compacted_through:
            self.compact(f"{latest:%Y-%m}")
        due = self.due()
        if due is None:
            return None
        with self.metrics.retrain_duration.time():
            outcome = self.retrain(due.cutoff, due.trigger)
        self.metrics.retrains.labels(trigger=due.trigger).inc()
        if outcome.promoted:
            self.metrics.promotions.labels(trigger=due.trigger).inc()
            self.metrics.champion_version.set(float(outcome.version))
        self.last_cutoff = due.cutoff
        self.outcomes.append(outcome)
        self.compact(self._compacted_through)
        return outcome

    def compact(self, month: str | None) -> None:
        """Compact the closed months (:mod:`monitor.compaction`). A failure is a warning and
        is tried again at the next occasion; a permanent one (denied) stops the retrainer."""
        if self.compactor is None:
            return
        try:
            self.compactor.run()  # logs each month it compacts
            self._compacted_through = month
        except Exception as exc:
            if aws.permanent(exc) is not None:
                raise
            log.warning("compaction failed; trying again at the next retrain or month: %s", exc)

    def retrain(self, cutoff: datetime, trigger: str = CADENCE) -> RetrainOutcome:
        data = fitting.Dataset.from_records(self.corpus.records())
        # Scored on hours neither model was fitted on: after the champion's cutoff (a drift
        # retrain may come sooner than the holdout's length after it).
        holdout_days = min(self.settings.holdout_days, (cutoff - self.last_cutoff) / timedelta(days=1))
        result = fitting.fit(data, cutoff, holdout_days, refit=False, **batch_model.sized(self.settings.batch_trees))
        current = model_registry.champion_version(self.settings)
        champion_model = model_registry.load_version(self.settings, current[0])
        champion = fitting.evaluate(champion_model, data, result.holdout_start, cutoff)
        promoted = result.holdout.mae <= champion.mae * (1.0 + self.settings.promotion_tolerance)
        version = None
        if promoted:
            result = fitting.refitted(result, data)  # only a promoted candidate is worth the second fit
            version = _register(
                self.settings, result, "retrain", data.X[data.before(cutoff)].tail(500),
                extra_metrics=champion.as_metrics("champion_holdout_"), extra_tags={"trigger": trigger},
            )
            model_registry.promote(self.settings, version)
            run_id = model_registry.version_run_id(self.settings, version)
        else:
            run_id = model_registry.log_run(
                f"retrain-{cutoff:%Y%m%d}-rejected",
                {"train_end": cutoff.isoformat(), "n_train": result.n_train, "kind": "retrain"},
                {**result.holdout.as_metrics("holdout_"), **champion.as_metrics("champion_holdout_")},
                {"kind": "retrain", "promoted": "false", "trigger": trigger},
            )
        self._log_data_drift(run_id, cutoff, current, champion_model)
        log.info(
            "retrain at %s (%s): candidate MAE %.1f vs champion %.1f on the last %.3g days -> %s",
            cutoff, trigger, result.holdout.mae, champion.mae, holdout_days,
            f"promoted version {version}" if promoted else "kept champion",
        )
        return RetrainOutcome(cutoff, result.holdout.mae, champion.mae, promoted, version, trigger)

    def _log_data_drift(self, run_id: str, cutoff: datetime, champion: tuple[str, dict[str, str]], model) -> None:
        """Log the champion's data-drift report (:mod:`monitor.data_drift`: its training rows
        against the last ``retrain_every_days`` before ``cutoff``) to the retrain's run.

        A report that fails is a warning and the run's :data:`DATA_DRIFT_ERROR_TAG`, never a
        failed retrain: the model is what the retrain is for.
        """
        try:
            # Imported here: Evidently takes seconds and tens of MB to load, which only a
            # process that retrains pays (not ``train``, nor anything importing this module).
            from monitor import data_drift

            version, tags = champion
            report = data_drift.compute(self.corpus.records(), self.corpus.predictions(), model, version,
                                        datetime.fromisoformat(tags[TRAIN_END_TAG]), self.span / timedelta(days=1),
                                        end=cutoff)
            data_drift.log_to_mlflow(report, run_id, {"model_version": version})
            self.metrics.data_drift_share.set(report.drift_share)
        except Exception as exc:
            log.warning("data-drift report of the retrain at %s failed: %s", cutoff.date(), exc, exc_info=True)
            try:
                model_registry.tag_run(run_id, DATA_DRIFT_ERROR_TAG, f"{type(exc).__name__}: {exc}"[:5000])
            except Exception as tag_exc:  # MLflow itself is failing: the warning above is all there is
                log.warning("could not tag run %s with the data-drift error: %s", run_id, tag_exc)

    def follow(self, poll_seconds: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.step() is not None:
                    continue
            except Exception as exc:  # keep retraining alive through a bad cycle (S3 or MLflow down)
                if aws.permanent(exc) is not None:
                    raise  # denied, bad credentials, a missing bucket: no later cycle can succeed
                log.exception("retraining cycle failed; retrying in %.0f s", poll_seconds)
            stop.wait(poll_seconds)
