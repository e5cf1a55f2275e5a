"""The served combination of the batch and online predictions.

>>> combine(100.0, 200.0)
150.0
>>> combine(None, 200.0)
200.0
"""

from __future__ import annotations


def combine(batch: float | None, online: float) -> float:
    """The mean of both models; the online model alone while no batch model serves."""
    if batch is None or batch != batch:
        return online
    return (batch + online) / 2.0
