"""Rolling error of the two models and of the served prediction over the most recent event hours.

>>> r = RollingErrors(window=2)
>>> r.add(10.0, 12.0, 9.0, 11.0)
>>> r.add(20.0, 20.0, 26.0, 22.0)
>>> r.add(30.0, 33.0, 30.0, 31.0)
>>> {k: round(v, 2) for k, v in r.mae().items()}
{'batch_mae': 1.5, 'online_mae': 3.0, 'combined_mae': 1.5}
"""

from __future__ import annotations

from collections import deque


class RollingErrors:
    def __init__(self, window: int = 168) -> None:
        self.errors: deque[tuple[float, float, float]] = deque(maxlen=window)

    def add(self, actual: float, batch: float | None, online: float, served: float) -> None:
        batch_err = abs(batch - actual) if batch is not None else float("nan")
        self.errors.append((batch_err, abs(online - actual), abs(served - actual)))

    def mae(self) -> dict[str, float]:
        names = ("batch_mae", "online_mae", "combined_mae")
        out = {}
        for i, name in enumerate(names):
            values = [e[i] for e in self.errors if e[i] == e[i]]
            out[name] = sum(values) / len(values) if values else float("nan")
        return out
