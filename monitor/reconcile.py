"""Produced = predicted + dead-lettered, with no duplicate: the accounting of a replay.

>>> r = reconcile(["a", "b", "c"], ["a", "b", "b"], [])
>>> r.missing, r.duplicates, r.ok
(['c'], ['b'], False)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reconciliation:
    produced: int
    predicted: int
    dead_lettered: int
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.duplicates and self.predicted + self.dead_lettered >= self.produced

    def table(self) -> str:
        rows = [
            ("produced", self.produced),
            ("predicted", self.predicted),
            ("dead-lettered", self.dead_lettered),
            ("missing", len(self.missing)),
            ("duplicated", len(self.duplicates)),
        ]
        return "\n".join(f"{k:<16}{v:>9,}" for k, v in rows)


def dead_letter_event_id(letter: dict) -> str | None:
    """The event id a dead letter was about, when its payload still says so."""
    try:
        payload = json.loads(letter.get("payload_text") or "")
    except ValueError:
        return None
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    return event_id if isinstance(event_id, str) else None


def reconcile(produced: Iterable[str], predicted: Iterable[str], dead_lettered: Iterable[str]) -> Reconciliation:
    produced = list(produced)
    predicted_counts = Counter(predicted)
    dead = list(dead_lettered)
    expected = set(produced)
    accounted = set(predicted_counts) | set(dead)
    return Reconciliation(
        produced=len(expected),
        predicted=sum(1 for e in predicted_counts if e in expected),
        dead_lettered=sum(1 for e in set(dead) - set(predicted_counts) if e in expected),
        missing=sorted(expected - accounted),
        duplicates=sorted(e for e, n in predicted_counts.items() if n > 1),
        unexpected=sorted(set(predicted_counts) - expected),
    )
