"""The batch model: a scikit-learn pipeline over the shared features.

Gradient-boosted trees handle the missing lags (an absent hour) natively, so no
imputation hides the difference between "no traffic" and "no data"; the weather code is a
native categorical feature. A Pipeline of one step keeps room for preprocessing without
changing what MLflow stores. The
features and hyperparameters were chosen on data before 2017 only (fit on hours before
2016, validate on 2016: MAE 180.1 against 188.5 for the first version); ``bench/accuracy``
reports the 2017-2018 results.

>>> from core import synthetic, dataset, features
>>> records = dataset.to_records(synthetic.generate(hours=24 * 60, seed=3), "301")
>>> X, y, _ = features.training_frame(records)
>>> model = build_pipeline(max_iter=20).fit(X, y)
>>> model.predict(X.head(3)).shape
(3,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from core.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS

DEFAULT_PARAMS = {
    "loss": "absolute_error",
    "learning_rate": 0.05,
    "max_iter": 1500,
    "max_leaf_nodes": 63,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "max_features": 0.5,
    # The default would hold out a random 10 % of hours and stop after ~250 iterations:
    # random rows are no validation for a time series, and it made comparisons noisy.
    "early_stopping": False,
    "random_state": 0,
}


def build_pipeline(**overrides: object) -> Pipeline:
    params = {**DEFAULT_PARAMS, **overrides}
    # By position: with names, HistGradientBoosting wraps every predict in a ColumnTransformer.
    categorical = [FEATURE_COLUMNS.index(name) for name in CATEGORICAL_FEATURES]
    regressor = HistGradientBoostingRegressor(categorical_features=categorical, **params)
    return Pipeline([("regress", regressor)])


def serve_single_threaded() -> None:
    """Predict with one thread in this process.

    A serving process scales by processes (one per core, or per shard lease); OpenMP's
    threads in every one of them would compete for the same cores, and with another busy
    process on the machine a 500-row prediction went from 13 ms to over a second, measured.
    """
    threadpool_limits(limits=1)


@dataclass(frozen=True)
class Scores:
    mae: float
    rmse: float
    r2: float
    n: int

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}mae": self.mae, f"{prefix}rmse": self.rmse, f"{prefix}r2": self.r2}


def score(y_true, y_pred) -> Scores:
    """MAE, RMSE and R² of predictions, ignoring rows where either side is missing."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    ok = ~(np.isnan(y_true) | np.isnan(y_pred))
    y_true, y_pred = y_true[ok], y_pred[ok]
    if len(y_true) == 0:
        return Scores(mae=float("nan"), rmse=float("nan"), r2=float("nan"), n=0)
    err = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    return Scores(
        mae=float(np.abs(err).mean()),
        rmse=float(np.sqrt((err**2).mean())),
        r2=1.0 - float((err**2).sum()) / ss_tot if ss_tot else float("nan"),
        n=int(len(y_true)),
    )
