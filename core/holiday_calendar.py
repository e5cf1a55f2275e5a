"""The holidays the source marks, known ahead of the hour: what a forecast of an unseen hour uses.

The source names a holiday on the first hour (00:00) of its date, and the stream marks the
rest of that day from it (:class:`core.features.StationHistory`). A forecast made at 23:00
for the next midnight has no record yet, so it asks this calendar instead. It gives the
source's names on the source's dates: the US federal holidays (python-holidays), on the
day they are observed when that is another day (Christmas 2016 on Monday the 26th), and
the first day of the Minnesota State Fair, the Thursday 11 days before Labor Day. Checked
against every holiday the dataset marks (``tests/test_holiday_calendar.py``).

>>> holiday_on(date(2016, 12, 26)), holiday_on(date(2016, 12, 25))
('Christmas Day', None)
>>> holiday_on(date(2017, 8, 24)), holiday_on(date(2017, 1, 16)), holiday_on(date(2017, 3, 1))
('State Fair', 'Martin Luther King Jr Day', None)
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

_OBSERVED = " (observed)"
#: Days between the State Fair's first day and Labor Day, its last.
_FAIR_BEFORE_LABOR_DAY = timedelta(days=11)


def holiday_on(day: date) -> str | None:
    """The source's name of the holiday on ``day``, or None for an ordinary day."""
    return _year(day.year).get(day)


@lru_cache(maxsize=16)
def _year(year: int) -> dict[date, str]:
    # The neighbouring years too: New Year's Day on a Saturday is observed on the Friday before.
    federal = holidays.US(years=range(year - 1, year + 2), observed=True)
    entries = [(day, name) for day, names in federal.items() for name in names.split("; ")]
    moved = {(name.removesuffix(_OBSERVED), day) for day, name in entries if name.endswith(_OBSERVED)}
    marked: dict[date, str] = {}
    for day, name in entries:
        if name.endswith(_OBSERVED):
            marked[day] = _source_name(name.removesuffix(_OBSERVED))
        elif (name, day - timedelta(days=1)) not in moved and (name, day + timedelta(days=1)) not in moved:
            marked[day] = _source_name(name)
        if name == "Labor Day":
            marked[day - _FAIR_BEFORE_LABOR_DAY] = "State Fair"
    return {day: name for day, name in marked.items() if day.year == year}


def _source_name(name: str) -> str:
    # The source drops punctuation: "New Year's Day" is "New Years Day", "Jr." is "Jr".
    return name.replace("'", "").replace(".", "")
