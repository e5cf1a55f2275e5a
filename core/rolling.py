"""Rolling error of the two models and of the served prediction over the most recent event hours.

Adding an hour and reading the means are O(1): running sums are kept beside the window and
recomputed from it once per window's worth of hours, so rounding in the subtractions never
builds up. A missing prediction (no batch prediction before a champion, or NaN) leaves that
model's mean to the hours it has.

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

_NAN = float("nan")


class RollingErrors:
    def __init__(self, window: int = 168) -> None:
        self.window = window
        #: (batch, online, served) absolute errors, oldest first; NaN where a prediction is missing.
        self.errors: deque[tuple[float, float, float]] = deque(maxlen=window)
        self._batch = self._online = self._served = 0.0
        self._batch_n = self._online_n = self._served_n = 0
        self._since_exact = 0

    def add(self, actual: float, batch: float | None, online: float, served: float) -> None:
        # Unrolled over the three models: this runs once per result row.
        b = abs(batch - actual) if batch is not None else _NAN
        o, s = abs(online - actual), abs(served - actual)
        if len(self.errors) == self.window:
            old_b, old_o, old_s = self.errors[0]
            if old_b == old_b:
                self._batch -= old_b
                self._batch_n -= 1
            if old_o == old_o:
                self._online -= old_o
                self._online_n -= 1
            if old_s == old_s:
                self._served -= old_s
                self._served_n -= 1
        self.errors.append((b, o, s))
        if b == b:
            self._batch += b
            self._batch_n += 1
        if o == o:
            self._online += o
            self._online_n += 1
        if s == s:
            self._served += s
            self._served_n += 1
        self._since_exact += 1
        if self._since_exact == self.window:
            self._recompute()

    def mae(self) -> dict[str, float]:
        return {"batch_mae": self._batch / self._batch_n if self._batch_n else _NAN,
                "online_mae": self._online / self._online_n if self._online_n else _NAN,
                "combined_mae": self._served / self._served_n if self._served_n else _NAN}

    def _recompute(self) -> None:
        sums = []
        for i in range(3):
            values = [e[i] for e in self.errors if e[i] == e[i]]
            sums.append((float(sum(values)), len(values)))
        (self._batch, self._batch_n), (self._online, self._online_n), (self._served, self._served_n) = sums
        self._since_exact = 0
