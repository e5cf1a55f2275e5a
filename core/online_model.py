"""The online model: two River linear models that predict each hour, then learn its true volume.

Its inputs are the shared features (:mod:`core.features`) expanded into sparse terms: an
intercept per hour of the week, and slopes on the last hour, this hour's mean over the
last four weeks and the last day's mean, per hour of the day (the last hour says more
about 08:00 than about 03:00). AdaGrad on a standardised target keeps it stable without
a learning-rate schedule. Two such models learn side by side, one for the median (absolute
loss) and one for the mean (squared loss), and their predictions are averaged, as in the
batch model: their errors differ enough that the mean beats either.

How it was chosen on data before 2017 (predict-then-learn from 2012-10, scored on 2016),
and what was tried and not kept, is in ``docs/models.md``.

>>> model = OnlineModel()
>>> x = {"hour_of_week": 8.0, "hour": 8.0, "is_holiday": 0.0, "is_day_off": 0.0,
...      "lag_1h_est": 900.0, "lag_24h": 5000.0, "wk4_mean": 5100.0, "mean_24h": 2500.0}
>>> model.predict(x)
0.0
>>> for _ in range(50):
...     model.learn(x, 5200.0)
>>> model.updates, round(model.predict(x), -2)
(50, 5200.0)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from river import linear_model, optim, preprocessing

LAGS = ("lag_1h", "wk4_mean", "mean_24h")
LEARNING_RATE = 0.04


def sparse_terms(features: Mapping[str, float]) -> dict[str, float]:
    """Expand shared features into the linear model's sparse terms (missing lag -> indicator).

    The last hour is ``lag_1h_est``: the source's skipped hours estimated from the hours
    before (:mod:`core.features`). Where even that is missing, ``lag_2h`` stands in (flagged
    per hour): rows without the last hour were by far the worst predicted. If it is still
    missing, the other lags get slopes of their own for that "no recent hour" regime.

    >>> sorted(sparse_terms({"hour_of_week": 8.0, "hour": 8.0, "is_holiday": 0.0, "is_day_off": 0.0, "lag_1h_est": float("nan"),
    ...     "lag_2h": 800.0, "wk4_mean": 5000.0, "mean_24h": 2500.0}))
    ['how_8', 'lag_1h', 'lag_1h_h8', 'lag_1h_imp_h8', 'mean_24h', 'mean_24h_h8', 'wk4_mean', 'wk4_mean_h8']
    """
    hour = int(features["hour"])
    # A day-off holiday shares Sunday's hourly intercepts (see DAY_OFF_HOLIDAYS).
    hour_of_week = 144 + hour if features["is_day_off"] else int(features["hour_of_week"])
    terms = {f"how_{hour_of_week}": 1.0}
    if features["is_holiday"]:
        terms[f"holiday_h{hour}"] = 1.0
    lag_1h = features["lag_1h_est"]
    imputed = False
    if lag_1h != lag_1h and features["lag_2h"] == features["lag_2h"]:  # NaN != NaN
        lag_1h, imputed = features["lag_2h"], True
    no_recent = lag_1h != lag_1h
    for name in LAGS:
        value = lag_1h if name == "lag_1h" else features[name]
        if value == value:
            scaled = float(value) / 1000.0
            terms[name] = scaled
            terms[f"{name}_h{hour}"] = scaled
            if no_recent:
                terms[f"{name}_nol1"] = scaled
                terms[f"{name}_nol1_h{hour}"] = scaled
        else:
            terms[f"{name}_missing"] = 1.0
            terms[f"{name}_missing_h{hour}"] = 1.0
    if imputed:
        terms[f"lag_1h_imp_h{hour}"] = 1.0
    return terms


def build_regressor(
    learning_rate: float = LEARNING_RATE, loss: optim.losses.RegressionLoss | None = None
) -> preprocessing.TargetStandardScaler:
    regressor = linear_model.LinearRegression(
        optimizer=optim.AdaGrad(learning_rate), loss=loss or optim.losses.Absolute(), intercept_lr=0.01, l2=0.0
    )
    return preprocessing.TargetStandardScaler(regressor=regressor)


class OnlineModel:
    """River regressors over :func:`sparse_terms`, averaged, plus the number of labels learned.

    The terms are computed once per record and shared by both models, and by the prediction
    and the update that follows it (a River ``Pipeline`` would compute them again).
    """

    def __init__(self, learning_rate: float = LEARNING_RATE) -> None:
        self.regressors = [
            build_regressor(learning_rate, optim.losses.Absolute()),
            build_regressor(learning_rate, optim.losses.Squared()),
        ]
        self.updates = 0

    def predict(self, features: Mapping[str, float]) -> float:
        return self._predict(sparse_terms(features))

    def predict_then_learn(self, features: Mapping[str, float], volume: float) -> float:
        """The prediction made before seeing ``volume``, then the update with it."""
        terms = sparse_terms(features)
        prediction = self._predict(terms)
        self._learn(terms, volume)
        return prediction

    def learn(self, features: Mapping[str, float], volume: float) -> None:
        self._learn(sparse_terms(features), volume)

    def _learn(self, terms: dict[str, float], volume: float) -> None:
        for regressor in self.regressors:
            regressor.learn_one(terms, volume)
        self.updates += 1

    def _predict(self, terms: dict[str, float]) -> float:
        return sum(float(regressor.predict_one(terms)) for regressor in self.regressors) / len(self.regressors)

    def __setstate__(self, state: dict) -> None:
        if "regressor" in state:
            # A checkpoint from before the squared-loss model: that model starts from a copy
            # of the absolute-loss one (same weights, target scale and AdaGrad sums) rather
            # than from zero, which would halve every prediction for weeks.
            absolute = state.pop("regressor")
            squared = copy.deepcopy(absolute)
            squared.regressor.loss = optim.losses.Squared()
            state["regressors"] = [absolute, squared]
        self.__dict__.update(state)
