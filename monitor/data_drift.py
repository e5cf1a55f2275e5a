"""Data drift of a model version: the hours it was trained on against the stream's latest window.

An Evidently report compares, column by column, the *reference* (the rows the version was
fitted on: the bucket's ``history/`` plus the stream rows before its ``train_end`` tag) with
the *current* window (the latest days of stream rows after ``train_end``). The columns are
the model's inputs as the featurizer sees them (:func:`core.features.stream_features`: the
temperature in °C with sensor faults as missing, rain and snow with impossible readings as
missing, clouds, the primary weather condition, the holiday flag of the whole day, hour of
day and day of week on the station's clock), the target ``traffic_volume``, and the
version's ``prediction``.

The prediction is compared with the version's *own* predictions on its training rows, not
with the target there: a regressor's output is smoother than the target (it shrinks towards
the hour's mean), so prediction against target would show drift from the model's bias alone,
even if nothing changed. The same function on both sides means a prediction drift can only
come from its inputs having moved. In the current window the prediction is the one the
consumer stored for each row, kept only where this version served it (``batch_model_version``):
rows served by another version, or by none, count as missing, so the missing share of
``prediction`` says how much of the window this version did not serve. (The in-sample
predictions are a little closer to the target than unseen hours' would be; the target's own
drift is reported beside it, in ``traffic_volume``.)

Evidently picks each column's method by its type and the reference's size (over 1,000 rows:
Wasserstein distance for numbers, Jensen-Shannon for categories, both drifted from 0.1). A
window that is not a whole number of weeks holds some weekdays more often than others, which
shows as drift of ``weekday`` (about 0.12 for 10 days): a true difference of the window, which
moves the predictions with it.

Evidently is imported here only, never by the consumer or ``core`` (it takes seconds and
tens of MB to import, :mod:`tests.test_data_drift` checks it), and its usage telemetry is off:
Evidently's logger (``evidently.telemetry``, through iterative-telemetry) sends nothing when
``DO_NOT_TRACK`` or ``ITERATIVE_DO_NOT_TRACK`` is set, and this module sets both before it
imports Evidently, unless the environment already has them.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from core import features
from core.schema import TrafficRecord

# Before Evidently is imported, so that nothing of it runs with telemetry on.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.metrics import MissingValueCount  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

NUMERICAL = ("temp_c", "rain_1h", "snow_1h", "clouds_all")
#: Hour and weekday are categories: they are cyclic (23 h is next to 0 h), and what matters is
#: how the window's hours are spread over them, not a distance between their numbers.
CATEGORICAL = ("weather", "is_holiday", "hour", "weekday")
TARGET = "traffic_volume"
PREDICTION = "prediction"
COLUMNS = NUMERICAL + CATEGORICAL + (TARGET, PREDICTION)
#: Where the report goes in an MLflow run, and the prefixes of its metrics there.
ARTIFACT = "data_drift/report.html"
SHARE_METRIC = "data_drift_share"
COUNT_METRIC = "data_drift_columns"
SCORE_PREFIX = "data_drift_score."
MISSING_PREFIX = "missing_share."
#: Evidently's test status of a column whose drift score crosses its method's threshold.
_DRIFTED = "FAIL"


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: Evidently's score, by the method it chose for the column's type and
    size (a p-value for small samples, a distance for large ones) and that method's threshold."""

    score: float
    drifted: bool
    method: str
    threshold: float


@dataclass(frozen=True)
class DriftReport:
    """What the report found, and the report itself as standalone HTML."""

    #: Share of the compared columns that drifted (Evidently's dataset drift).
    drift_share: float
    drifted_columns: int
    #: Per column; a column empty on either side cannot be compared and is left out.
    columns: dict[str, ColumnDrift]
    #: Per column, the share of the current window's rows where it is missing.
    missing_share: dict[str, float]
    reference_rows: int
    current_rows: int
    html: str

    def metrics(self) -> dict[str, float]:
        """The numbers as MLflow metrics, prefixed apart from the retrain's holdout metrics."""
        values = {SHARE_METRIC: self.drift_share, COUNT_METRIC: float(self.drifted_columns),
                  "data_drift_reference_rows": float(self.reference_rows),
                  "data_drift_current_rows": float(self.current_rows)}
        values.update({f"{SCORE_PREFIX}{name}": c.score for name, c in self.columns.items()})
        values.update({f"{MISSING_PREFIX}{name}": share for name, share in self.missing_share.items()})
        return values

    def table(self) -> str:
        lines = [f"{'column':<16}{'drift score':>12}  {'drifted':<8}{'missing':>8}  method"]
        for name in COLUMNS:
            drift = self.columns.get(name)
            score = f"{drift.score:12.3f}" if drift else f"{'n/a':>12}"
            drifted = ("yes" if drift.drifted else "no") if drift else "-"
            method = f"{drift.method} (threshold {drift.threshold:g})" if drift else "empty on one side"
            lines.append(f"{name:<16}{score}  {drifted:<8}{self.missing_share[name]:>8.1%}  {method}")
        lines.append(f"drifted columns: {self.drifted_columns} of {len(self.columns)} ({self.drift_share:.0%})")
        return "\n".join(lines)


def frame(pairs: Sequence[tuple[TrafficRecord, dict[str, float]]]) -> pd.DataFrame:
    """The report's columns (but the prediction) of featurized records, and their local time,
    indexed by event id."""
    names = {code: name for name, code in features.WEATHER_CODES.items()}
    return pd.DataFrame(
        {
            **{c: [f[c] for _, f in pairs] for c in NUMERICAL},
            "weather": np.array([names.get(f["weather_code"]) for _, f in pairs], dtype="object"),
            "is_holiday": [int(f["is_holiday"]) for _, f in pairs],
            "hour": [int(f["hour"]) for _, f in pairs],
            "weekday": [int(f["weekday"]) for _, f in pairs],
            TARGET: [float(r.traffic_volume) for r, _ in pairs],
            "local_time": pd.DatetimeIndex([r.local_time for r, _ in pairs], dtype="datetime64[ns]"),
        },
        index=pd.Index([r.event_id for r, _ in pairs], name="event_id"),
    )


def predict(model, pairs: Sequence[tuple[TrafficRecord, dict[str, float]]]) -> np.ndarray:
    """The model's predictions for featurized records, given the columns it was fitted on (as
    :meth:`adapters.model_registry.Champion.predict` does)."""
    X = features.to_frame([f for _, f in pairs])
    names = getattr(model, "feature_names_in_", None)
    return np.asarray(model.predict(X if names is None else X[list(names)]), dtype="float64")


def frames(
    records: Sequence[TrafficRecord],
    served: pd.DataFrame,
    model,
    version: str,
    train_end: datetime,
    window_days: float,
    end: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current frames of a version, from every record seen so far.

    ``records`` are history and stream records in stream order (:meth:`training.corpus.Corpus.records`);
    ``served`` the stream's result rows, for the predictions served. The reference is every
    hour before ``train_end`` with ``model``'s predictions; the current window the last
    ``window_days`` before ``end`` (default: just after the newest hour), never before
    ``train_end``, with the predictions ``version`` served. Both are featurized in one pass, so
    the window's first hours know the holidays and lags before them as serving did.
    """
    pairs = list(features.stream_features(records))
    all_columns = frame(pairs)
    times = all_columns["local_time"]
    if end is None:
        end = times.max() + pd.Timedelta(hours=1) if len(times) else train_end
    start = max(pd.Timestamp(train_end), pd.Timestamp(end) - pd.Timedelta(timedelta(days=window_days)))
    in_reference = (times < pd.Timestamp(train_end)).to_numpy()
    in_window = ((times >= start) & (times < pd.Timestamp(end))).to_numpy()
    reference = all_columns[in_reference].assign(
        **{PREDICTION: predict(model, [p for p, keep in zip(pairs, in_reference, strict=True) if keep])}
        if in_reference.any() else {PREDICTION: np.nan}
    )
    current = all_columns[in_window]
    by_version = served[served["batch_model_version"] == version].drop_duplicates("event_id", keep="last")
    predictions = pd.to_numeric(by_version.set_index("event_id")["batch_prediction"], errors="coerce")
    current = current.assign(**{PREDICTION: current.index.map(predictions).astype("float64")})
    return reference, current


def build(reference: pd.DataFrame, current: pd.DataFrame) -> DriftReport:
    """Run the Evidently report on two frames of :data:`COLUMNS` and read its results."""
    if current.empty or reference.empty:
        raise ValueError(f"a drift report needs rows on both sides (reference {len(reference)}, "
                         f"current {len(current)})")
    # Evidently plots a column over the timestamp column, and over the index without one.
    reference, current = (f[["local_time", *COLUMNS]].reset_index(drop=True) for f in (reference, current))
    comparable = [c for c in COLUMNS if reference[c].notna().any() and current[c].notna().any()]
    definition = DataDefinition(timestamp="local_time", numerical_columns=[*NUMERICAL, TARGET, PREDICTION],
                                categorical_columns=list(CATEGORICAL))
    report = Report(
        [DataDriftPreset(columns=comparable), *[MissingValueCount(column=c, tests=[]) for c in COLUMNS]],
        include_tests=True,  # a drift test per column: its status is Evidently's verdict "drifted"
    )
    with warnings.catch_warnings():
        # A column constant in a window (no snow all summer) makes Evidently divide by a zero
        # spread when it summarises it; its drift is computed all the same.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(Dataset.from_pandas(current, data_definition=definition),
                              Dataset.from_pandas(reference, data_definition=definition))
        html = snapshot.get_html_str(as_iframe=False)
    result = snapshot.dict()
    drifted = {t["metric_config"]["params"]["column"]: t["status"] == _DRIFTED
               for t in result["tests"] if t["metric_config"]["params"]["type"].endswith(":ValueDrift")}
    columns, missing, share, count = {}, {}, 0.0, 0
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            columns[config["column"]] = ColumnDrift(float(metric["value"]), drifted[config["column"]],
                                                    config["method"], float(config["threshold"]))
        elif kind == "MissingValueCount":
            missing[config["column"]] = float(metric["value"]["share"])
        elif kind == "DriftedColumnsCount":
            share, count = float(metric["value"]["share"]), int(metric["value"]["count"])
    return DriftReport(share, count, {c: columns[c] for c in COLUMNS if c in columns}, missing,
                       len(reference), len(current), html)


def compute(
    records: Sequence[TrafficRecord],
    served: pd.DataFrame,
    model,
    version: str,
    train_end: datetime,
    window_days: float,
    end: datetime | None = None,
) -> DriftReport:
    """The drift report of ``version`` (see :func:`frames` for the arguments)."""
    return build(*frames(records, served, model, version, train_end, window_days, end))


def log_to_mlflow(report: DriftReport, run_id: str, params: dict[str, object] | None = None) -> None:
    """Log the report to a run (finished or not): the HTML as :data:`ARTIFACT`, its numbers as
    metrics (:meth:`DriftReport.metrics`), and ``params`` prefixed ``data_drift.``."""
    client = MlflowClient()
    stamp = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), stamp, 0) for k, v in report.metrics().items() if v == v],
        params=[Param(f"data_drift.{k}", str(v)) for k, v in (params or {}).items()],
    )
    client.log_text(run_id, report.html, ARTIFACT)

