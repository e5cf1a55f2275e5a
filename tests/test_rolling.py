"""core.rolling: the running sums equal the plain mean over the window, whatever the order of hours."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from core.rolling import RollingErrors

volume = st.floats(0, 8000)
hour = st.tuples(volume, st.one_of(st.none(), volume), st.one_of(volume, st.just(float("nan"))), volume)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(hour, max_size=60))
def test_the_rolling_means_are_the_means_of_the_window(window, hours):
    rolling = RollingErrors(window)
    for added, (actual, batch, online, served) in enumerate(hours, start=1):
        rolling.add(actual, batch, online, served)
        kept = hours[max(0, added - window):added]
        expected = {
            "batch_mae": [abs(b - a) for a, b, _, _ in kept if b is not None],
            "online_mae": [abs(o - a) for a, _, o, _ in kept if o == o],
            "combined_mae": [abs(s - a) for a, _, _, s in kept],
        }
        for name, value in rolling.mae().items():
            if expected[name]:
                assert math.isclose(value, sum(expected[name]) / len(expected[name]), rel_tol=1e-9, abs_tol=1e-6)
            else:
                assert math.isnan(value)
