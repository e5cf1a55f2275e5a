"""The served prediction: the batch and online predictions weighted by how well each did lately.

Each station keeps an exponentially weighted mean of each model's absolute error, and
the next hour weights each model by the inverse square of its mean: inverse-variance
weighting, with absolute errors for robustness. Chosen on data before 2017 (batch model
fitted before 2016 and retrained every 30 days, online model predicting then learning
through 2016), 2016 MAE:

============================================  =====
served prediction                             MAE
============================================  =====
batch model alone (retrained)                 173.4
fixed 0.6 batch + 0.4 online (the last rule)  167.3
recent errors, inverse square, alpha 0.05,    165.2
batch alone on holidays (the rule until the
online model treated day-off holidays as
Sundays)
with the features of the online model now     160.6
(:data:`core.features.ONLINE_ONLY_FEATURES`),
batch alone on holidays
the same weights on holidays too (this rule)  160.1
============================================  =====

The batch model served alone on holidays while the online model erred most there (2016
MAE on holiday dates 330 against 210); since it treats day-off holidays as Sundays, its
errors there are in line (228) and weighting them helps.

In a first comparison on the same hours (before retraining promoted a model unless it was
worse by more than 5 %: fixed weights 167.7), recent-error weights gave 166.5, with the
holiday rule 165.7; inverse cubes gained 0.5 more and errors kept per hour of the day
0.3: too little for their extra freedom.

>>> c = Combiner()
>>> c.predict(1000.0, 2000.0)      # no errors known yet: the prior weight
1400.0
>>> for _ in range(100):
...     c.learn(actual=1000.0, batch=1010.0, online=1040.0)
>>> round(c.batch_weight(), 3)     # errors 10 vs 40: weights 16:1
0.941
>>> c.predict(None, 2000.0)        # no batch model serving yet
2000.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The batch model's weight until both models have an error on record.
PRIOR_BATCH_WEIGHT = 0.6
#: How fast the error means forget: about the last 20 hours count.
ALPHA = 0.05
POWER = 2.0
#: Errors below one vehicle/hour are treated as one, so a lucky hour cannot take all the weight.
ERROR_FLOOR = 1.0


@dataclass
class Combiner:
    """Per-station weighting of the two models, learned on the stream (predict, then learn)."""

    batch_error: float | None = None
    online_error: float | None = None

    def batch_weight(self) -> float:
        if self.batch_error is None or self.online_error is None:
            return PRIOR_BATCH_WEIGHT
        batch = max(self.batch_error, ERROR_FLOOR) ** -POWER
        online = max(self.online_error, ERROR_FLOOR) ** -POWER
        return batch / (batch + online)

    def predict(self, batch: float | None, online: float) -> float:
        """The served prediction; the online model alone while no batch model serves."""
        if batch is None or batch != batch:
            return online
        weight = self.batch_weight()
        return weight * batch + (1.0 - weight) * online

    def learn(self, actual: float, batch: float | None, online: float) -> None:
        self.online_error = _smoothed(self.online_error, abs(actual - online))
        if batch is not None and batch == batch:
            self.batch_error = _smoothed(self.batch_error, abs(actual - batch))


def fixed_mean(batch, online) -> np.ndarray:
    """The rule served before :class:`Combiner`, over columns of predictions: the
    ``PRIOR_BATCH_WEIGHT`` mean, the online prediction where there is no batch one.

    >>> fixed_mean([100.0, float("nan")], [200.0, 200.0]).tolist()
    [140.0, 200.0]
    """
    batch, online = np.asarray(batch, dtype=float), np.asarray(online, dtype=float)
    return np.where(np.isnan(batch), online, PRIOR_BATCH_WEIGHT * batch + (1.0 - PRIOR_BATCH_WEIGHT) * online)


def _smoothed(mean: float | None, value: float) -> float:
    return value if mean is None else (1.0 - ALPHA) * mean + ALPHA * value
