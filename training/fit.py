"""Fitting and evaluating the batch model on a time split (no server involved).

Evaluation is always out of time: the model scored on the holdout window was fitted only
on hours before it. The model that is registered is then refitted on every hour before
the cutoff, so it knows the most recent weeks too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd
from sklearn.pipeline import Pipeline

from core import batch_model, features
from core.batch_model import Scores
from core.schema import TrafficRecord


@dataclass(frozen=True)
class Dataset:
    """Features, target and local times of records in stream order."""

    X: pd.DataFrame
    y: pd.Series
    times: pd.Series

    @classmethod
    def from_records(cls, records: Sequence[TrafficRecord]) -> Dataset:
        return cls(*features.training_frame(records))

    def before(self, cutoff: datetime) -> pd.Series:
        return self.times < pd.Timestamp(cutoff)

    def between(self, start: datetime, end: datetime) -> pd.Series:
        return (self.times >= pd.Timestamp(start)) & (self.times < pd.Timestamp(end))


@dataclass(frozen=True)
class FitResult:
    model: Pipeline | None  # fitted on every hour before the cutoff (None until refit)
    validated: Pipeline  # fitted on hours before the holdout window only
    holdout: Scores
    holdout_start: datetime
    cutoff: datetime
    n_train: int
    params: dict[str, object]


def fit(data: Dataset, cutoff: datetime, holdout_days: float, refit: bool = True, **params: object) -> FitResult:
    """Fit and score out of time; with ``refit``, also fit the model to register on every hour."""
    holdout_start = cutoff - timedelta(days=holdout_days)
    train, window, everything = data.before(holdout_start), data.between(holdout_start, cutoff), data.before(cutoff)
    if train.sum() == 0 or window.sum() == 0:
        raise ValueError(f"not enough data to fit before {holdout_start} and evaluate until {cutoff}")
    validated = batch_model.build_pipeline(**params).fit(data.X[train], data.y[train])
    holdout = batch_model.score(data.y[window], validated.predict(data.X[window]))
    model = batch_model.build_pipeline(**params).fit(data.X[everything], data.y[everything]) if refit else None
    return FitResult(
        model=model,
        validated=validated,
        holdout=holdout,
        holdout_start=holdout_start,
        cutoff=cutoff,
        n_train=int(everything.sum()),
        params={**batch_model.DEFAULT_PARAMS, **params},
    )


def refitted(result: FitResult, data: Dataset) -> FitResult:
    """The same fit, with the model to register fitted on every hour before the cutoff."""
    everything = data.before(result.cutoff)
    model = batch_model.build_pipeline(**result.params).fit(data.X[everything], data.y[everything])
    return replace(result, model=model)


def evaluate(model, data: Dataset, start: datetime, end: datetime) -> Scores:
    window = data.between(start, end)
    return batch_model.score(data.y[window], model.predict(data.X[window]))
