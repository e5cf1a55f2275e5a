"""The served combination of the batch and online predictions.

A weighted mean: the weight was chosen on 2016 (hours neither model was chosen on), where
0.8 on the batch model gave MAE 175.9 against 182.4 for the plain mean.

>>> combine(100.0, 200.0)
120.0
>>> combine(None, 200.0)
200.0
"""

from __future__ import annotations

BATCH_WEIGHT = 0.8


def combine(batch: float | None, online: float) -> float:
    """The weighted mean of both models; the online model alone while no batch model serves."""
    if batch is None or batch != batch:
        return online
    return BATCH_WEIGHT * batch + (1.0 - BATCH_WEIGHT) * online
