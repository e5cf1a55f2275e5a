"""The batch model: a scikit-learn pipeline over the shared features.

Gradient-boosted trees handle the missing lags (an absent hour) natively, so no
imputation hides the difference between "no traffic" and "no data"; the weather code is a
native categorical feature. Two boosted models are averaged (a ``VotingRegressor``): one
fitted for the median (absolute error) and one for the mean (squared error); their errors
differ enough that the average beats either, and beats one model with as many trees as
both. The trees learn the change from the last hour's volume (:class:`LastHourResidual`),
not the volume itself. A Pipeline keeps room for preprocessing without changing what
MLflow stores.

``TRAFFIC_BATCH_TREES`` trades accuracy for speed (:func:`sized`): the same two members
with fewer trees at a proportionally larger learning rate. How every setting was chosen on
data before 2017, and what was tried and not kept, is in ``docs/models.md``; the cost of
the trees is in ``docs/benchmarks.md``.

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
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor, VotingRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from core.config import ENVIRONMENT
from core.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS

#: Learning rate × trees per member, held when the number of trees changes (1,000 at 0.075,
#: 500 at 0.15).
LEARNING_BUDGET = 75.0
#: Past a step of 1, each tree overshoots the residual it fits and the sum diverges (20 trees
#: at 3.75 predicted volumes of 1e11): fewer than 75 trees learn at this rate instead.
MAX_LEARNING_RATE = 1.0
#: One member per loss; their predictions are averaged with equal weights.
LOSSES = ("absolute_error", "squared_error")


def sized(trees: int) -> dict[str, object]:
    """Parameters for ``trees`` trees per member, at the learning rate that keeps the budget.

    >>> sized(1000)
    {'max_iter': 1000, 'learning_rate': 0.075}
    >>> sized(500) == {k: DEFAULT_PARAMS[k] for k in ("max_iter", "learning_rate")}
    True
    >>> sized(20)
    {'max_iter': 20, 'learning_rate': 1.0}
    """
    if trees < 1:
        raise ValueError(f"a boosted model needs at least one tree, not {trees}")
    return {"max_iter": trees, "learning_rate": min(LEARNING_BUDGET / trees, MAX_LEARNING_RATE)}


#: Shared by both members of the average. The size is the product's default
#: (``TRAFFIC_BATCH_TREES``), so a pipeline built without arguments is the one served.
DEFAULT_PARAMS = {
    **sized(int(ENVIRONMENT["TRAFFIC_BATCH_TREES"])),
    "max_leaf_nodes": 63,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    # Every column at every split: with the change from the last hour as the target,
    # sampling fewer columns was worse on every year before 2017 it was tried on.
    "max_features": 1.0,
    # The default would hold out a random 10 % of hours and stop after ~250 iterations:
    # random rows are no validation for a time series, and it made comparisons noisy.
    "early_stopping": False,
    "random_state": 0,
}


class LastHourResidual(RegressorMixin, BaseEstimator):
    """Fit ``regressor`` to how far each hour's volume is from the last hour's, and predict
    the last hour's volume plus that.

    The base is column ``last`` (the last hour's volume); where it is missing, column
    ``fallback`` (the hour before); where both are, the mean of the training target.
    Both are input columns, so the regressor sees what its target was measured from. Trees
    fitted to the volume itself spend most of their splits on the level of traffic, which
    the last hour already gives (the comparison is in ``docs/models.md``).

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.array([[100.0, 90.0], [np.nan, 100.0], [120.0, np.nan], [np.nan, np.nan]])
    >>> model = LastHourResidual(LinearRegression(), last=0, fallback=1).fit(X[:1], [110.0])
    >>> model.base(X).tolist()             # the last hour, else the one before, else the mean
    [100.0, 100.0, 120.0, 110.0]
    >>> model.predict(X[:1]).tolist()
    [110.0]
    """

    def __init__(self, regressor, last: int = 0, fallback: int = 1) -> None:
        self.regressor = regressor
        self.last = last
        self.fallback = fallback

    def base(self, X) -> np.ndarray:
        values = np.asarray(X, dtype="float64")
        last, fallback = values[:, self.last], values[:, self.fallback]
        return np.where(np.isnan(last), np.where(np.isnan(fallback), self.level_, fallback), last)

    def fit(self, X, y) -> LastHourResidual:
        validate_data(self, X, skip_check_array=True)
        y = np.asarray(y, dtype="float64")
        self.level_ = float(y.mean())
        self.regressor_ = clone(self.regressor).fit(X, y - self.base(X))
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        validate_data(self, X, reset=False, skip_check_array=True)
        return self.base(X) + self.regressor_.predict(X)


def build_pipeline(**overrides: object) -> Pipeline:
    params = {**DEFAULT_PARAMS, **overrides}
    # By position: with names, HistGradientBoosting wraps every predict in a ColumnTransformer.
    categorical = [FEATURE_COLUMNS.index(name) for name in CATEGORICAL_FEATURES]
    members = [
        (loss, HistGradientBoostingRegressor(categorical_features=categorical, **{**params, "loss": loss}))
        for loss in LOSSES
    ]
    average = VotingRegressor(members)
    last, fallback = FEATURE_COLUMNS.index("lag_1h"), FEATURE_COLUMNS.index("lag_2h")
    return Pipeline([("regress", LastHourResidual(average, last=last, fallback=fallback))])


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
