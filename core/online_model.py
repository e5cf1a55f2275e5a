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

from collections import defaultdict
from collections.abc import Mapping

from river import linear_model, optim, preprocessing, utils

from core.packing import pack_floats, unpack_floats

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

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`: the terms with weights, each regressor's
        learned state over them, and the label count.

        The regressors learn from the same terms in the same order, so they hold weights for
        the same terms, which go once, in the weights' order (a restored model's snapshot is
        the same, byte for byte).
        """
        terms = list(self.regressors[0].regressor.weights)
        return {"updates": self.updates, "terms": terms,
                "regressors": [regressor_snapshot(r, terms) for r in self.regressors]}

    @classmethod
    def from_snapshot(cls, data: dict) -> OnlineModel:
        """The model :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        terms = data["terms"]
        if not all(type(term) is str for term in terms) or len(set(terms)) != len(terms):
            raise ValueError("an online model's terms are distinct strings")
        model = cls.__new__(cls)
        model.regressors = [regressor_from_snapshot(r, terms) for r in data["regressors"]]
        if not model.regressors:
            raise ValueError("an online model needs at least one regressor")
        model.updates = int(data["updates"])
        return model


#: The losses a snapshot names, and back.
LOSSES = {"absolute": optim.losses.Absolute, "squared": optim.losses.Squared}
_LOSS_NAMES = {loss: name for name, loss in LOSSES.items()}


def regressor_snapshot(scaled: preprocessing.TargetStandardScaler, terms: list[str]) -> dict:
    """A :func:`build_regressor` regressor's whole state as plain data: its settings, its
    weights and AdaGrad's squared-gradient sums in the order of ``terms`` (packed:
    :mod:`core.packing`), the intercept, AdaGrad's step count, and the target scaler's
    running count, mean and sum of squares.

    Only what that build can hold: any other configuration (an L1 penalty's state, a
    learning-rate schedule, another initializer, optimizer or loss), or weights for other
    terms than ``terms``, raise TypeError rather than be saved in part.
    """
    linear = scaled.regressor
    optimizer = linear.optimizer
    if (type(scaled) is not preprocessing.TargetStandardScaler or type(linear) is not linear_model.LinearRegression
            or type(optimizer) is not optim.AdaGrad or type(linear.loss) not in _LOSS_NAMES or linear.l1
            or type(optimizer.lr) is not optim.schedulers.Constant
            or type(linear.intercept_lr) is not optim.schedulers.Constant
            or type(linear.initializer) is not optim.initializers.Zeros or linear.initializer.value != 0.0):
        raise TypeError(f"no snapshot for this configuration of the online model: {scaled!r}")
    weights = linear.weights
    # AdaGrad adds to a term's sum wherever it updates its weight: the same terms. Packing the
    # weights first raises KeyError for a term without one, before the sums (a defaultdict) are read.
    if len(weights) != len(terms) or weights.keys() != optimizer.g2.keys():
        raise TypeError("no snapshot for regressors with weights for different terms")
    packed_weights = pack_floats(map(weights.__getitem__, terms))
    return {
        "loss": _LOSS_NAMES[type(linear.loss)],
        "learning_rate": optimizer.lr.learning_rate,
        "eps": optimizer.eps,
        "intercept_lr": linear.intercept_lr.learning_rate,
        "intercept_init": linear.intercept_init,
        "l2": linear.l2,
        "clip_gradient": linear.clip_gradient,
        "intercept": linear.intercept,
        "weights": packed_weights,
        "iterations": optimizer.n_iterations,
        "g2": pack_floats(map(optimizer.g2.__getitem__, terms)),
        "target": {"n": scaled.var.mean.n, "mean": scaled.var.mean._mean, "s": scaled.var._S, "ddof": scaled.var.ddof},
    }


def regressor_from_snapshot(data: dict, terms: list[str]) -> preprocessing.TargetStandardScaler:
    """The regressor :func:`regressor_snapshot` gave over ``terms``, to continue exactly where it stopped."""
    linear = linear_model.LinearRegression(
        optimizer=optim.AdaGrad(float(data["learning_rate"]), eps=float(data["eps"])),
        loss=LOSSES[data["loss"]](),
        l2=float(data["l2"]),
        intercept_init=float(data["intercept_init"]),
        intercept_lr=float(data["intercept_lr"]),
        clip_gradient=float(data["clip_gradient"]),
    )
    weights, g2 = unpack_floats(data["weights"]), unpack_floats(data["g2"])
    if not len(weights) == len(g2) == len(terms):
        raise ValueError("a regressor needs one weight and one AdaGrad sum per term")
    linear.intercept = float(data["intercept"])
    linear._weights = utils.VectorDict(dict(zip(terms, weights)))
    linear.optimizer.n_iterations = int(data["iterations"])
    linear.optimizer.g2 = defaultdict(float, zip(terms, g2))
    scaled = preprocessing.TargetStandardScaler(regressor=linear)
    target = data["target"]
    scaled.var.ddof = int(target["ddof"])
    scaled.var.mean.n = float(target["n"])
    scaled.var.mean._mean = float(target["mean"])
    scaled.var._S = float(target["s"])
    return scaled
