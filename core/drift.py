"""Concept drift per station: a Page-Hinkley test on each model's absolute errors.

Each station keeps one River :class:`~river.drift.PageHinkley` detector per model (batch,
online, served). After every hour the stream learns, each detector sees that model's
absolute error in units of the station's typical volume (an exponentially weighted mean
of its volumes over about a month), so one setting fits a station of 1,000 vehicles an
hour and one of 6,000. The test looks for an increase only: errors falling is good news.

A detection is a :class:`DriftEvent`: the station, the event hour, the model and the
detector's statistics. The detectors are part of the station state (:mod:`core.state_codec`),
so re-processing a batch from its committed state detects the same events again, which
is what lets the consumer write them exactly once in effect.

Why Page-Hinkley and these settings (chosen on 2016, ``bench.selection``), and why not
ADWIN (its window lives in compiled code with no state to save as plain data), is in
``docs/models.md``.

>>> drift = ErrorDrift()
>>> [drift.update(3000.0, {"served": 3000.0 + noise}) for noise in (60.0, -80.0, 70.0) * 40][-1]
[]
>>> events = [e for _ in range(6) for e in drift.update(1800.0, {"served": 3000.0})]   # a lane closed: -40 %
>>> [(model, round(stats["statistic"], 2)) for model, stats in events]
[('served', 1.0)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from river import drift

#: The models whose errors are watched, as the result rows name their predictions.
MODELS = ("batch", "online", "served")
#: Page-Hinkley: the error increase tolerated per hour (in units of typical volume), the
#: cumulative increase that is a drift, the forgetting of the cumulative sums, and the
#: hours seen before any test (after a reset too). Chosen on 2016 by ``bench.drift`` (docs/models.md).
DELTA = 0.04
THRESHOLD = 1.0
ALPHA = 0.999
MIN_INSTANCES = 72
#: How fast the station's typical volume follows its volumes: about the last 720 hours count.
SCALE_ALPHA = 1.0 / 720.0
_KEEP = 1.0 - SCALE_ALPHA
#: Volumes below this are not a scale (a station closed at night, a first hour of zero).
SCALE_FLOOR = 100.0


@dataclass(frozen=True)
class DriftEvent:
    """A detection, with where in the stream it happened; :meth:`as_dict` is how it is stored."""

    station_id: str
    event_time: str
    model: str
    statistics: dict[str, float]
    shard_id: str
    sequence_number: str
    batch_model_version: str | None

    def as_dict(self, processed_at: str) -> dict[str, object]:
        return {"station_id": self.station_id, "event_time": self.event_time, "model": self.model,
                "detector": "PageHinkley", **self.statistics, "shard_id": self.shard_id,
                "sequence_number": self.sequence_number, "batch_model_version": self.batch_model_version,
                "processed_at": processed_at}


@dataclass(frozen=True)
class DetectorSettings:
    """Page-Hinkley's settings. The stream runs the chosen ones (the module's constants), which
    are code like the combiner's, not state: ``bench.drift`` passes others to choose them."""

    delta: float = DELTA
    threshold: float = THRESHOLD
    alpha: float = ALPHA
    min_instances: int = MIN_INSTANCES

    def detector(self) -> drift.PageHinkley:
        return drift.PageHinkley(min_instances=self.min_instances, delta=self.delta, threshold=self.threshold,
                                 alpha=self.alpha, mode="up")


CHOSEN = DetectorSettings()


class ErrorDrift:
    """A station's drift detectors, one per model, and its typical volume."""

    def __init__(self, settings: DetectorSettings = CHOSEN) -> None:
        self.detectors = {model: settings.detector() for model in MODELS}
        self.scale: float | None = None

    def update(self, actual: float, predictions: Mapping[str, float | None]) -> list[tuple[str, dict[str, float]]]:
        """Feed each model's error of this hour (a model without a prediction is skipped);
        returns ``(model, statistics)`` for each detector that signalled a drift."""
        scale = self.scale
        if scale is None:
            scale = actual
        if scale < SCALE_FLOOR:
            scale = SCALE_FLOOR
        detectors = self.detectors
        detected = []
        for model, prediction in predictions.items():
            if prediction is None or prediction != prediction:
                continue
            detector = detectors[model]
            detector.update(abs(actual - prediction) / scale)
            if detector._drift_detected:
                detected.append((model, _statistics(detector, abs(actual - prediction), scale)))
        self.scale = actual if self.scale is None else _KEEP * self.scale + SCALE_ALPHA * actual
        return detected

    def to_snapshot(self) -> dict:
        """Plain data for :mod:`core.state_codec`: the typical volume and each detector's running sums."""
        return {"scale": self.scale, "detectors": {model: _detector_snapshot(d) for model, d in self.detectors.items()}}

    @classmethod
    def from_snapshot(cls, data: dict) -> ErrorDrift:
        """The detectors :meth:`to_snapshot` gave; raises ValueError, TypeError or KeyError on data of another shape."""
        watched = cls()
        watched.scale = None if data["scale"] is None else float(data["scale"])
        if set(data["detectors"]) != set(MODELS):
            raise ValueError(f"drift detectors for {sorted(data['detectors'])}, not {sorted(MODELS)}")
        watched.detectors = {model: _detector_from_snapshot(data["detectors"][model]) for model in MODELS}
        return watched


def _statistics(detector: drift.PageHinkley, error: float, scale: float) -> dict[str, float]:
    return {"statistic": detector._sum_increase - detector._min_increase, "threshold": detector.threshold,
            "mean_error": detector._x_mean.get() * scale, "error": error, "hours_observed": detector._x_mean.n}


def _detector_snapshot(detector: drift.PageHinkley) -> dict:
    # Floats throughout (River starts some at int 0 or -1), so a restored detector's snapshot
    # is the same bytes; infinity (no minimum yet) is not JSON: None stands for it.
    minimum = detector._min_increase
    return {"n": float(detector._x_mean.n), "mean": float(detector._x_mean._mean),
            "sum_increase": float(detector._sum_increase), "sum_decrease": float(detector._sum_decrease),
            "min_increase": None if minimum == float("inf") else float(minimum),
            "max_decrease": float(detector._max_decrease), "detected": detector.drift_detected}


def _detector_from_snapshot(data: dict) -> drift.PageHinkley:
    detector = CHOSEN.detector()
    detector._x_mean.n = float(data["n"])
    detector._x_mean._mean = float(data["mean"])
    detector._sum_increase = float(data["sum_increase"])
    detector._sum_decrease = float(data["sum_decrease"])
    detector._min_increase = float("inf") if data["min_increase"] is None else float(data["min_increase"])
    detector._max_decrease = float(data["max_decrease"])
    if type(data["detected"]) is not bool:
        raise TypeError("a detector's 'detected' is true or false")
    detector._drift_detected = data["detected"]
    return detector


#: A fresh station's drift state, as :mod:`core.state_codec` upgrades older snapshots to.
FRESH = ErrorDrift().to_snapshot()
