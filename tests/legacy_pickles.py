"""Checkpoints pickled the way the code before the snapshot format wrote them, for testing the migration.

:func:`legacy_pickle` pickles today's objects with the reductions their classes had then:
``StationHistory`` as its ``(volumes, hours, holiday_dates, last_hour)`` tuple, the others
by their ``__dict__``, River objects as River pickles them. Its options give the shapes of
older checkpoints still: no combiner, one absolute-loss regressor, holidays without names,
a combiner without the carried residual. :data:`FIXTURE` holds states pickled by
``pickle.dumps`` itself at commit ea59bff, the last code that pickled; the tests check that
:func:`legacy_pickle` reproduces it byte for byte.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from pathlib import Path

from core import dataset, synthetic
from core.ensemble import Combiner
from core.features import StationHistory
from core.online_model import OnlineModel
from core.processing import RawRecord, StationState, process_batch
from core.schema import encode

FIXTURE = Path(__file__).parent / "data" / "legacy-states.pkl"
COMBINER_RESIDUAL_FIELDS = ("residual", "residual_hour", "residual_lagged", "residual_square")


def fixture_states() -> dict[str, StationState]:
    """The states :data:`FIXTURE` holds: two stations after three days each, one across Christmas."""
    states: dict[str, StationState] = {}
    for station, start, seed in (("301", "2015-01-01", 1), ("302", "2015-12-23", 2)):
        records = dataset.to_records(synthetic.generate(start=start, hours=72, seed=seed), station)
        raws = [RawRecord(encode(r), "shard", str(i), station) for i, r in enumerate(records)]
        process_batch(raws, states, None, "t")
    return states


class _LegacyPickler(pickle.Pickler):
    def __init__(self, file, *, combiner: bool, single_regressor: bool, holiday_names: bool,
                 combiner_residual: bool) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.combiner, self.single_regressor = combiner, single_regressor
        self.holiday_names, self.combiner_residual = holiday_names, combiner_residual

    def reducer_override(self, obj):
        if type(obj) is StationHistory:
            holidays = obj.holiday_dates if self.holiday_names else set(obj.holiday_dates)
            return copyreg.__newobj__, (StationHistory,), (obj.volumes, obj.hours, holidays, obj.last_hour)
        if type(obj) is StationState:
            state = dict(vars(obj))
            del state["drift"], state["band"], state["latest"]  # the pickled format had no detectors, intervals or newest record
            if not self.combiner:
                del state["combiner"]
            return copyreg.__newobj__, (StationState,), state
        if type(obj) is OnlineModel:
            state = dict(vars(obj))
            if self.single_regressor:
                state = {"regressor": state["regressors"][0], "updates": state["updates"]}
            return copyreg.__newobj__, (OnlineModel,), state
        if type(obj) is Combiner:
            state = dict(vars(obj))
            if not self.combiner_residual:
                for name in COMBINER_RESIDUAL_FIELDS:
                    del state[name]
            return copyreg.__newobj__, (Combiner,), state
        return NotImplemented


def legacy_pickle(states: dict[str, StationState], *, combiner: bool = True, single_regressor: bool = False,
                  holiday_names: bool = True, combiner_residual: bool = True) -> bytes:
    """``states`` as a checkpoint of the pickled format; the defaults give its last shape."""
    buffer = io.BytesIO()
    _LegacyPickler(buffer, combiner=combiner, single_regressor=single_regressor, holiday_names=holiday_names,
                   combiner_residual=combiner_residual).dump(states)
    return buffer.getvalue()

