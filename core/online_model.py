"""The online model: a River linear model that predicts each hour, then learns its true volume.

Its inputs are the shared features (:mod:`core.features`) expanded into sparse terms: an
intercept per hour of the week, and slopes on the lags per hour of the day (yesterday's
volume says more about 08:00 than about 03:00). AdaGrad on a standardised target keeps
it stable without tuning a learning-rate schedule. Chosen on data before 2017.

>>> model = OnlineModel()
>>> x = {"hour_of_week": 8.0, "hour": 8.0, "is_holiday": 0.0,
...      "lag_1h": 900.0, "lag_24h": 5000.0, "lag_168h": 5100.0, "mean_24h": 2500.0}
>>> model.predict(x)
0.0
>>> for _ in range(50):
...     model.learn(x, 5200.0)
>>> model.updates, round(model.predict(x), -2)
(50, 5200.0)
"""

from __future__ import annotations

from collections.abc import Mapping

from river import compose, linear_model, optim, preprocessing

LAGS = ("lag_1h", "lag_24h", "lag_168h", "mean_24h")
LEARNING_RATE = 0.05


def sparse_terms(features: Mapping[str, float | str]) -> dict[str, float]:
    """Expand shared features into the linear model's sparse terms (missing lag -> indicator)."""
    hour = int(features["hour"])
    terms = {f"how_{int(features['hour_of_week'])}": 1.0}
    if features["is_holiday"]:
        terms[f"holiday_h{hour}"] = 1.0
    for name in LAGS:
        value = features[name]
        if value == value:  # not NaN
            scaled = float(value) / 1000.0
            terms[name] = scaled
            terms[f"{name}_h{hour}"] = scaled
        else:
            terms[f"{name}_missing"] = 1.0
            terms[f"{name}_missing_h{hour}"] = 1.0
    return terms


def build_pipeline(learning_rate: float = LEARNING_RATE) -> compose.Pipeline:
    regressor = linear_model.LinearRegression(optimizer=optim.AdaGrad(learning_rate), intercept_lr=0.01, l2=0.0)
    return compose.Pipeline(
        ("terms", compose.FuncTransformer(sparse_terms)),
        ("regress", preprocessing.TargetStandardScaler(regressor=regressor)),
    )


class OnlineModel:
    """A River pipeline plus the number of labels it has learned (picklable as a whole)."""

    def __init__(self, learning_rate: float = LEARNING_RATE) -> None:
        self.pipeline = build_pipeline(learning_rate)
        self.updates = 0

    def predict(self, features: Mapping[str, float | str]) -> float:
        return float(self.pipeline.predict_one(features))

    def learn(self, features: Mapping[str, float | str], volume: float) -> None:
        self.pipeline.learn_one(features, volume)
        self.updates += 1
