"""Replay schedule: when each record is due, at a given speed, in event time.

At speed 1 a record is sent an hour after the previous one (event time is preserved in
the record; the clock between records follows it). At speed N everything is N times
faster; at ``max`` nothing waits. A gap of missing hours counts as at most
``max_gap_hours``, so a 10-month hole in the data does not stall a real-time replay.

>>> from datetime import datetime, timedelta
>>> times = [datetime(2017, 1, 1, h) for h in (0, 1, 5)]
>>> offsets(times, speed=3600.0, max_gap_hours=1)
[0.0, 1.0, 2.0]
>>> offsets(times, speed=None, max_gap_hours=1)
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no waiting), else a positive factor."""
    if text.strip().lower() == "max":
        return None
    speed = float(text)
    if speed <= 0:
        raise ValueError("speed must be positive or 'max'")
    return speed


def offsets(times: Sequence[datetime], speed: float | None, max_gap_hours: float) -> list[float]:
    """Seconds after the start at which each record is due."""
    if speed is None:
        return [0.0] * len(times)
    out, elapsed = [], 0.0
    for i, t in enumerate(times):
        if i:
            gap = (t - times[i - 1]).total_seconds()
            elapsed += min(gap, max_gap_hours * 3600.0) / speed
        out.append(elapsed)
    return out
