"""When to retrain: on a cadence of event time, and early after a drift in the batch model's errors.

The cadence retrains every ``TRAFFIC_RETRAIN_EVERY_DAYS`` of event time after the last
retrain's cutoff. A drift event of the batch model (:mod:`core.drift`, written by the
consumer to ``drift/``) brings the next retrain forward: once ``TRAFFIC_DRIFT_SETTLE_HOURS``
of event time have passed since the detection (hours of the new regime to learn from and
to score on), and at least ``TRAFFIC_DRIFT_MIN_SPACING_DAYS`` after the last retrain (a
storm of detections retrains once, and never more often than that). Only the batch model's events count: the online model
and the weighting learn every hour and recover by themselves.

Pure: the same events and clocks always give the same decision, which is what lets
``bench.drift`` replay the schedule outside the stream.

>>> from datetime import datetime, timedelta
>>> plan = Schedule(cadence=timedelta(days=10), drift=True, settle=timedelta(hours=24), spacing=timedelta(days=2))
>>> last = datetime(2016, 1, 1)
>>> plan.next(last, latest=datetime(2016, 1, 8), drift_times=[])
>>> plan.next(last, latest=datetime(2016, 1, 12), drift_times=[])
Retrain(cutoff=datetime.datetime(2016, 1, 11, 0, 0), trigger='cadence')
>>> plan.next(last, latest=datetime(2016, 1, 4, 12), drift_times=[datetime(2016, 1, 3, 17)])  # settling
>>> plan.next(last, latest=datetime(2016, 1, 5), drift_times=[datetime(2016, 1, 3, 17)])
Retrain(cutoff=datetime.datetime(2016, 1, 4, 17, 0), trigger='drift')
>>> plan.next(last, latest=datetime(2016, 1, 2, 22), drift_times=[datetime(2016, 1, 1, 20)])  # too soon after the last
>>> plan.next(last, latest=datetime(2016, 1, 5), drift_times=[datetime(2016, 1, 1, 20)])
Retrain(cutoff=datetime.datetime(2016, 1, 3, 0, 0), trigger='drift')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

CADENCE = "cadence"
DRIFT = "drift"


@dataclass(frozen=True)
class Retrain:
    """A retrain that is due: the event hour its data ends at, and what triggered it."""

    cutoff: datetime
    trigger: str


@dataclass(frozen=True)
class Schedule:
    cadence: timedelta
    #: Whether drift events bring retrains forward.
    drift: bool
    settle: timedelta
    spacing: timedelta

    def next(self, last_cutoff: datetime, latest: datetime, drift_times: Iterable[datetime]) -> Retrain | None:
        """The retrain due once the stream has reached ``latest`` (local event time), given the
        last retrain's cutoff and the batch model's drift detections; None if none is due yet.

        Of a cadence retrain and a drift retrain both due, the earlier cutoff wins; the next
        cadence then counts from it.
        """
        spans = int((latest - last_cutoff) / self.cadence)
        due = [Retrain(last_cutoff + spans * self.cadence, CADENCE)] if spans >= 1 else []
        if self.drift:
            after = [detected for detected in drift_times if detected > last_cutoff]
            if after:
                cutoff = max(_hour(min(after) + self.settle), last_cutoff + self.spacing)
                if cutoff <= latest:
                    due.append(Retrain(cutoff, DRIFT))
        return min(due, key=lambda r: r.cutoff) if due else None


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
