"""Serialising the per-station stream state (lag history and online model) for checkpoints.

>>> from core.processing import StationState
>>> states = load_states(dump_states({"301": StationState()}))
>>> list(states), states["301"].online.updates
(['301'], 0)
"""

from __future__ import annotations

import pickle

from core.processing import StationState


def dump_states(states: dict[str, StationState]) -> bytes:
    return pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)


def load_states(blob: bytes) -> dict[str, StationState]:
    # Only ever our own blobs, from our own bucket (or training's seed), never user input.
    return pickle.loads(blob)  # noqa: S301
