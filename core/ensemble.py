"""The served prediction: the batch and online predictions weighted by how well each did lately,
moved by the part of the last hour's error that tends to persist.

Each station keeps an exponentially weighted mean of each model's absolute error, and
the next hour weights each model by the inverse square of its mean: inverse-variance
weighting, with absolute errors for robustness. What the weighted prediction missed by in
the last hour carries over into this one (an incident, a storm, a detour: both models see
the last hour's volume, but not why it was off), so the served prediction adds the last
hour's residual times their autocorrelation, estimated on the station's stream.

The share carried is learned per station over about the last 100 hours, at most half of
the residual, and only into the hour right after it. How the rule and its settings were
chosen on data before 2017, and what was tried and not kept, is in ``docs/models.md``.

>>> c = Combiner()
>>> c.predict(1000.0, 2000.0, hour=0)      # no errors known yet: the prior weight
1400.0
>>> for hour in range(100):
...     c.learn(actual=1000.0, batch=1010.0, online=1040.0, hour=hour)
>>> round(c.batch_weight(), 3)             # errors 10 vs 40: weights 16:1
0.941
>>> round(c.weighted(1010.0, 1040.0), 1), round(c.predict(1010.0, 1040.0, hour=100), 1)
(1011.8, 1005.9)
>>> round(c.predict(1010.0, 1040.0, hour=105), 1)   # hours missing since: no residual to carry
1011.8
>>> c.predict(None, 2000.0, hour=106)      # no batch model serving yet
2000.0
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: The batch model's weight until both models have an error on record.
PRIOR_BATCH_WEIGHT = 0.6
#: How fast the error means forget: about the last 20 hours count.
ALPHA = 0.05
POWER = 2.0
#: Errors below one vehicle/hour are treated as one, so a lucky hour cannot take all the weight.
ERROR_FLOOR = 1.0
#: How fast the residuals' autocorrelation estimate forgets: about the last 100 hours count.
RESIDUAL_ALPHA = 0.01
#: At most this share of the last hour's residual is carried into the next hour.
MAX_RESIDUAL_SHARE = 0.5


@dataclass
class Combiner:
    """Per-station weighting of the two models, learned on the stream (predict, then learn).

    ``hour`` is the record's hour (:attr:`core.schema.TrafficRecord.wall_clock_hour`): the last residual is
    carried only into the hour right after it.
    """

    batch_error: float | None = None
    online_error: float | None = None
    #: The weighted prediction's residual (actual - weighted) in ``residual_hour``.
    residual: float | None = None
    residual_hour: int | None = None
    #: Exponentially weighted means of residual × the hour before's residual, and of the
    #: hour before's residual squared: their ratio is the autocorrelation carried over.
    residual_lagged: float = 0.0
    residual_square: float = 0.0

    def batch_weight(self) -> float:
        if self.batch_error is None or self.online_error is None:
            return PRIOR_BATCH_WEIGHT
        batch = max(self.batch_error, ERROR_FLOOR) ** -POWER
        online = max(self.online_error, ERROR_FLOOR) ** -POWER
        return batch / (batch + online)

    def weighted(self, batch: float | None, online: float) -> float:
        """The two predictions weighted; the online one alone while no batch model serves."""
        if batch is None or batch != batch:
            return online
        weight = self.batch_weight()
        return weight * batch + (1.0 - weight) * online

    def residual_share(self) -> float:
        if self.residual_square <= 0.0:
            return 0.0
        return min(max(self.residual_lagged / self.residual_square, 0.0), MAX_RESIDUAL_SHARE)

    def predict(self, batch: float | None, online: float, hour: int) -> float:
        """The served prediction for ``hour``."""
        return self._carried(self.weighted(batch, online), hour)

    def learn(self, actual: float, batch: float | None, online: float, hour: int) -> None:
        self._learn(actual, self.weighted(batch, online), batch, online, hour)

    def predict_then_learn(self, actual: float, batch: float | None, online: float, hour: int) -> float:
        """:meth:`predict`, then :meth:`learn` with ``actual``: one weighting serves both."""
        weighted = self.weighted(batch, online)
        served = self._carried(weighted, hour)
        self._learn(actual, weighted, batch, online, hour)
        return served

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`: the fields, by name."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_snapshot(cls, data: dict) -> Combiner:
        """The combiner :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        return cls(
            batch_error=_optional(float, data["batch_error"]),
            online_error=_optional(float, data["online_error"]),
            residual=_optional(float, data["residual"]),
            residual_hour=_optional(int, data["residual_hour"]),
            residual_lagged=float(data["residual_lagged"]),
            residual_square=float(data["residual_square"]),
        )

    def _carried(self, weighted: float, hour: int) -> float:
        if self.residual is not None and self.residual_hour == hour - 1:
            return weighted + self.residual_share() * self.residual
        return weighted

    def _learn(self, actual: float, weighted: float, batch: float | None, online: float, hour: int) -> None:
        residual = actual - weighted  # with the weights it was predicted with
        if self.residual is not None and self.residual_hour == hour - 1:
            self.residual_lagged = _smoothed(self.residual_lagged, residual * self.residual, RESIDUAL_ALPHA)
            self.residual_square = _smoothed(self.residual_square, self.residual * self.residual, RESIDUAL_ALPHA)
        if self.residual_hour is None or hour > self.residual_hour:  # a late record leaves the newest
            self.residual, self.residual_hour = residual, hour
        self.online_error = _smoothed(self.online_error, abs(actual - online))
        if batch is not None and batch == batch:
            self.batch_error = _smoothed(self.batch_error, abs(actual - batch))


_FIELDS = tuple(f.name for f in fields(Combiner))


def _optional(kind, value):
    return None if value is None else kind(value)


def fixed_mean(batch, online) -> np.ndarray:
    """A fixed weighting, over columns of predictions, that ``bench.accuracy`` reports for
    reference: the ``PRIOR_BATCH_WEIGHT`` mean, the online prediction where there is no batch one.

    >>> fixed_mean([100.0, float("nan")], [200.0, 200.0]).tolist()
    [140.0, 200.0]
    """
    batch, online = np.asarray(batch, dtype=float), np.asarray(online, dtype=float)
    return np.where(np.isnan(batch), online, PRIOR_BATCH_WEIGHT * batch + (1.0 - PRIOR_BATCH_WEIGHT) * online)


def _smoothed(mean: float | None, value: float, alpha: float = ALPHA) -> float:
    return value if mean is None else (1.0 - alpha) * mean + alpha * value
