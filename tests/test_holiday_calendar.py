"""core.holiday_calendar names, at every midnight of the real dataset, the holiday its record names."""

from __future__ import annotations

from core import dataset
from core.holiday_calendar import holiday_on


def test_the_calendar_is_the_sources_holidays_at_every_midnight(real_data_path):
    midnights = [r for r in dataset.to_records(dataset.read_frame(real_data_path), "301") if r.local_time.hour == 0]
    marked = [r for r in midnights if r.holiday is not None]
    assert len(midnights) > 1500 and len(marked) > 40
    assert [(r.local_time.date(), holiday_on(r.local_time.date())) for r in midnights] == \
        [(r.local_time.date(), r.holiday) for r in midnights]
