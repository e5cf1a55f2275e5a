"""Prediction intervals for the served prediction: split conformal over a station's recent errors.

Each station keeps the last ``window`` nonconformity scores of its served prediction (the
absolute error, divided by the typical absolute error at that hour of the day, so the band
is wide at the rush hours and narrow at night), and the typical error per hour of day as an
exponentially weighted mean. The interval of the next hour at level ``1 - a`` is the served
prediction ± the ``ceil((n + 1)(1 - a))``-th smallest of the ``n`` scores times that hour's
typical error: split conformal prediction on a rolling calibration window, whose coverage
holds as long as the recent errors are exchangeable with the next one (a sudden change
breaks that until the window has seen it; ``bench.intervals`` measures how much).

Like the rest of the station state it predicts before it learns and is saved as plain data,
so a replay from a checkpoint gives the same intervals.

>>> band = ConformalBand(window=100)
>>> band.interval(1000.0, hour=8, level=0.9) is None       # nothing calibrated yet
True
>>> for day in range(60):
...     band.learn(actual=1000.0 + (day % 10) * 10.0, served=1045.0, hour=8)
>>> [round(b) for b in band.interval(1000.0, hour=8, level=0.9)]  # errors of 5 .. 45
[955, 1045]
>>> [round(b) for b in band.interval(1000.0, hour=8, level=0.8)]
[960, 1040]
>>> band.interval(1000.0, hour=9, level=0.9) is None       # an hour of day never seen
True
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

#: The levels written in every result row and served by the API (``served_lower_90``, ...).
LEVELS = (0.8, 0.9)
#: Scores kept: the last 30 days of hours. On 2016 every window from a week to two months
#: held its levels, and this one was the narrowest (docs/models.md).
WINDOW = 720
#: How fast an hour of day's typical error forgets: about its last 10 days count.
SCALE_ALPHA = 0.1
#: Typical errors below one vehicle/hour count as one, so a perfect hour cannot make a score infinite.
SCALE_FLOOR = 1.0


def column_names(level: float) -> tuple[str, str]:
    """The result columns of a level's bounds.

    >>> column_names(0.9)
    ('served_lower_90', 'served_upper_90')
    """
    percent = round(level * 100)
    return f"served_lower_{percent}", f"served_upper_{percent}"


class ConformalBand:
    """One station's calibration: recent scores in arrival order and sorted, and the typical error per hour of day."""

    __slots__ = ("window", "scores", "_sorted", "scales")

    def __init__(self, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError(f"a calibration window holds at least one score, not {window}")
        self.window = window
        self.scores: deque[float] = deque()
        self._sorted: list[float] = []
        #: The exponentially weighted mean absolute error at each local hour of day (0-23), None until seen.
        self.scales: list[float | None] = [None] * 24

    def interval(self, served: float, hour: int, level: float) -> tuple[float, float] | None:
        """The band around ``served`` for an hour whose local hour of day is ``hour``; None
        while too few scores are known to reach ``level`` (fewer than ``1 / (1 - level) - 1``)
        or the hour of day has no typical error yet."""
        n = len(self._sorted)
        rank = math.ceil((n + 1) * level)
        scale = self.scales[hour]
        if rank > n or scale is None:
            return None
        half = self._sorted[rank - 1] * scale
        return served - half, served + half

    def bounds(self, served: float | None, hour: int) -> dict[str, float | None]:
        """Every level's bounds as result columns (None where there is no interval)."""
        columns: dict[str, float | None] = {}
        for level in LEVELS:
            found = None if served is None else self.interval(served, hour, level)
            lower, upper = column_names(level)
            columns[lower], columns[upper] = (None, None) if found is None else found
        return columns

    def learn(self, actual: float, served: float, hour: int) -> None:
        """Add this hour's score (against the typical error known before it), then update the typical error."""
        error = abs(actual - served)
        scale = self.scales[hour]
        if scale is not None:
            score = error / max(scale, SCALE_FLOOR)
            self.scores.append(score)
            insort(self._sorted, score)
            if len(self.scores) > self.window:
                del self._sorted[bisect_left(self._sorted, self.scores.popleft())]
        self.scales[hour] = error if scale is None else (1.0 - SCALE_ALPHA) * scale + SCALE_ALPHA * error

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`: the window's size, its scores in arrival order, the scales."""
        return {"window": self.window, "scores": list(self.scores), "scales": list(self.scales)}

    @classmethod
    def from_snapshot(cls, data: dict) -> ConformalBand:
        """The band :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        band = cls(int(data["window"]))
        scores = [float(s) for s in data["scores"]]
        scales = [None if s is None else float(s) for s in data["scales"]]
        if len(scores) > band.window or len(scales) != 24:
            raise ValueError(f"a band of {len(scores)} scores in a window of {band.window}, {len(scales)} hour scales")
        band.scores.extend(scores)
        band._sorted = sorted(scores)
        band.scales = scales
        return band
