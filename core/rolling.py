"""Rolling error of the two models and of the served prediction over the most recent event hours.

Adding an hour and reading the means are O(1): running sums are kept beside the window and
recomputed from it once per window's worth of hours, so rounding in the subtractions never
builds up. A missing batch prediction (no champion yet) counts for the online and served
means only.

>>> r = RollingErrors(window=2)
>>> r.add(10.0, 12.0, 9.0, 11.0)
>>> r.add(20.0, 20.0, 26.0, 22.0)
>>> r.add(30.0, 33.0, 30.0, 31.0)
>>> {k: round(v, 2) for k, v in r.mae().items()}
{'batch_mae': 1.5, 'online_mae': 3.0, 'combined_mae': 1.5}
>>> r.add(40.0, None, 41.0, 40.0)
>>> {k: round(v, 2) for k, v in r.mae().items()}
{'batch_mae': 3.0, 'online_mae': 0.5, 'combined_mae': 0.5}
"""

from __future__ import annotations

from collections import deque


class RollingErrors:
    def __init__(self, window: int = 168) -> None:
        self.window = window
        #: (batch, online, served) absolute errors, oldest first; batch is None without a champion.
        self.errors: deque[tuple[float | None, float, float]] = deque(maxlen=window)
        self._batch = self._online = self._served = 0.0
        self._batch_hours = 0
        self._since_exact = 0

    def add(self, actual: float, batch: float | None, online: float, served: float) -> None:
        errors = self.errors
        if len(errors) == self.window:
            old_batch, old_online, old_served = errors[0]
            self._online -= old_online
            self._served -= old_served
            if old_batch is not None:
                self._batch -= old_batch
                self._batch_hours -= 1
        added = (None if batch is None else abs(batch - actual), abs(online - actual), abs(served - actual))
        errors.append(added)
        self._online += added[1]
        self._served += added[2]
        if added[0] is not None:
            self._batch += added[0]
            self._batch_hours += 1
        self._since_exact += 1
        if self._since_exact == self.window:
            self._recompute()

    def mae(self) -> dict[str, float]:
        hours = len(self.errors)
        return {"batch_mae": self._batch / self._batch_hours if self._batch_hours else float("nan"),
                "online_mae": self._online / hours if hours else float("nan"),
                "combined_mae": self._served / hours if hours else float("nan")}

    def _recompute(self) -> None:
        batch = [e[0] for e in self.errors if e[0] is not None]
        self._batch, self._batch_hours = float(sum(batch)), len(batch)
        self._online = float(sum(e[1] for e in self.errors))
        self._served = float(sum(e[2] for e in self.errors))
        self._since_exact = 0
