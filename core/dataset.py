"""The UCI "Metro Interstate Traffic Volume" dataset (id 492, CC BY 4.0), as hourly records.

The file is found, in order, at an explicit path (``--data``), at ``TRAFFIC_DATA``, in
the user cache, or downloaded from UCI and verified by its SHA-256. It is never part of
the repository.

Quirks handled here, once, for training and serving alike:

* 48,204 rows describe 40,575 distinct hours: an hour with several weather conditions has
  one row per condition, identical otherwise. They become one record whose ``weather``
  keeps every condition, the first row's being primary.
* Missing hours stay missing (11,976 of them); nothing is invented.
* pandas would read the holiday value ``"None"`` as NaN; it is read as text and mapped
  to ``None`` explicitly, so no hour becomes a holiday by accident.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from core.schema import TrafficRecord

log = logging.getLogger(__name__)

FILE_NAME = "Metro_Interstate_Traffic_Volume.csv.gz"
CSV_SHA256 = "749c90d720360a4215bb15345526073c079ba4cc95e3fa558796d083f85fce9e"
DOWNLOAD_URL = "https://archive.ics.uci.edu/static/public/492/metro+interstate+traffic+volume.zip"
COLUMNS = (
    "holiday",
    "temp",
    "rain_1h",
    "snow_1h",
    "clouds_all",
    "weather_main",
    "weather_description",
    "date_time",
    "traffic_volume",
)


class DataUnavailable(RuntimeError):
    """The dataset is neither given, cached nor downloadable; the message says what to do."""


def locate(explicit: str | None, env_path: str, cache_dir: Path, *, download: bool = True) -> Path:
    """Find the dataset file, downloading it into the cache as a last resort."""
    for candidate, origin in ((explicit, "--data"), (env_path, "TRAFFIC_DATA")):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise DataUnavailable(f"{origin} points at {path}, which is not a file.")
            return path
    cached = cache_dir / FILE_NAME
    if cached.is_file():
        return cached
    if download:
        try:
            return _download(cached)
        except (OSError, ValueError) as exc:
            reason = f"downloading {DOWNLOAD_URL} failed ({exc})"
    else:
        reason = "downloading is disabled"
    raise DataUnavailable(
        f"The traffic dataset was not found and {reason}.\n"
        "Provide it in one of these ways:\n"
        f"  * pass --data /path/to/{FILE_NAME} (or the plain .csv), or\n"
        f"  * export TRAFFIC_DATA=/path/to/{FILE_NAME}, or\n"
        f"  * put the file at {cached}.\n"
        f"It is UCI dataset 492, 'Metro Interstate Traffic Volume': {DOWNLOAD_URL}"
    )


def _download(target: Path) -> Path:
    log.info("downloading %s", DOWNLOAD_URL)
    with urllib.request.urlopen(DOWNLOAD_URL, timeout=60) as response:  # noqa: S310 (fixed https URL)
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    member = next(n for n in archive.namelist() if n.startswith("Metro_Interstate_Traffic_Volume"))
    payload = archive.read(member)
    csv_bytes = gzip.decompress(payload) if member.endswith(".gz") else payload
    verify(csv_bytes)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(gzip.compress(csv_bytes))
    shutil.move(tmp.name, target)
    return target


def verify(csv_bytes: bytes) -> None:
    digest = hashlib.sha256(csv_bytes).hexdigest()
    if digest != CSV_SHA256:
        raise ValueError(f"sha256 of the CSV is {digest}, expected {CSV_SHA256}")


def read_frame(path: Path) -> pd.DataFrame:
    """Read the CSV (plain or gzip) with every column typed and ``holiday`` kept as text."""
    frame = pd.read_csv(
        path,
        keep_default_na=False,
        na_values={"temp": [""], "rain_1h": [""], "snow_1h": [""]},
        dtype={"holiday": str, "weather_main": str, "weather_description": str},
    )
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}")
    frame["date_time"] = pd.to_datetime(frame["date_time"], format="%Y-%m-%d %H:%M:%S")
    return frame


def to_records(frame: pd.DataFrame, station_id: str) -> list[TrafficRecord]:
    """Collapse rows to one record per hour, in time order, keeping every weather condition."""
    if not pd.api.types.is_datetime64_any_dtype(frame["date_time"]):
        frame = frame.assign(date_time=pd.to_datetime(frame["date_time"], format="%Y-%m-%d %H:%M:%S"))
    rows = frame.sort_values("date_time", kind="stable").itertuples(index=False)
    return [_hour_record(station_id, group) for _, group in itertools.groupby(rows, key=lambda r: r.date_time)]


def _hour_record(station_id: str, rows: Iterable) -> TrafficRecord:
    rows = list(rows)
    first = rows[0]
    conditions = list(dict.fromkeys((r.weather_main, r.weather_description) for r in rows))
    return TrafficRecord.build(
        station_id=station_id,
        local_time=first.date_time.to_pydatetime(),
        temp=None if pd.isna(first.temp) else float(first.temp),
        rain_1h=float(first.rain_1h),
        snow_1h=float(first.snow_1h),
        clouds_all=int(first.clouds_all),
        weather=conditions,
        holiday=None if first.holiday in ("None", "") else str(first.holiday),
        traffic_volume=int(first.traffic_volume),
    )


def select(records: Iterable[TrafficRecord], start: datetime | None, end: datetime | None) -> Iterator[TrafficRecord]:
    """Records whose local time is in ``[start, end]`` (naive local datetimes, either may be open)."""
    for record in records:
        local = record.local_time
        if (start is None or local >= start) and (end is None or local <= end):
            yield record


def load_records(
    explicit: str | None,
    env_path: str,
    cache_dir: Path,
    station_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[TrafficRecord]:
    path = locate(explicit, env_path, cache_dir)
    return list(select(to_records(read_frame(path), station_id), start, end))
