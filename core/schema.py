"""The record on the stream: one hour of traffic at one station, as JSON.

A record is validated strictly when it is decoded: a wrong type, a missing field, NaN
or Infinity, a negative or impossible volume, an unknown ``schema_version`` or an
``event_id`` that does not belong to its station and hour are all rejected with a
:class:`DecodeError` whose ``reason`` is one of :data:`REASONS`, so that the consumer
can dead-letter it and go on.

>>> from datetime import UTC, datetime
>>> r = TrafficRecord.build(station_id="301", local_time=datetime(2017, 1, 1, 8),
...     temp=265.3, rain_1h=0.0, snow_1h=0.0, clouds_all=90,
...     weather=[("Clouds", "overcast clouds")], holiday=None, traffic_volume=1234)
>>> r.event_id, r.event_time.isoformat()
('301-20170101T08', '2017-01-01T08:00:00-06:00')
>>> decode(encode(r)) == r
True
>>> decode(b'{"schema_version": 9}').reason
Traceback (most recent call last):
...
core.schema.DecodeError: unsupported_schema_version: schema_version 9 is not one of (1,)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = (SCHEMA_VERSION,)
#: ATR station 301 on I-94 reports in Minneapolis-St Paul local time.
STATION_TZ = ZoneInfo("America/Chicago")
#: Kinesis accepts 1 MiB a record; a traffic record is ~300 bytes, so anything near
#: the limit is garbage and is refused before it is parsed.
MAX_RECORD_BYTES = 16 * 1024
#: Highest hourly volume that is physically plausible on this road (the data peaks at 7,280).
MAX_TRAFFIC_VOLUME = 20_000
#: Hour and day keys count from here on the station's wall clock (naive local time).
EPOCH = datetime(1970, 1, 1)

REASONS = (
    "oversized",
    "invalid_utf8",
    "invalid_json",
    "unsupported_schema_version",
    "invalid_field",
    "event_id_mismatch",
    "duplicate_event",
    "out_of_order",
)


class DecodeError(ValueError):
    """A record that cannot be used, with a machine-readable ``reason`` and a message."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


NonNegative = Annotated[float, Field(ge=0)]


class WeatherCondition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    main: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(max_length=128)]


class TrafficRecord(BaseModel):
    """One hour at one station. ``weather[0]`` is the primary condition of the hour."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    schema_version: Literal[1]
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    station_id: Annotated[str, Field(min_length=1, max_length=64)]
    event_time: AwareDatetime
    #: Kelvin, as the source reports it; sensor faults (0 K) are cleaned in features.
    temp: float | None
    rain_1h: NonNegative
    snow_1h: NonNegative
    clouds_all: Annotated[int, Field(ge=0, le=100)]
    weather: Annotated[list[WeatherCondition], Field(min_length=1, max_length=16)]
    holiday: Annotated[str, Field(min_length=1, max_length=64)] | None
    traffic_volume: Annotated[int, Field(ge=0, le=MAX_TRAFFIC_VOLUME)]

    @classmethod
    def build(
        cls,
        *,
        station_id: str,
        local_time: datetime,
        temp: float | None,
        rain_1h: float,
        snow_1h: float,
        clouds_all: int,
        weather: list[tuple[str, str]],
        holiday: str | None,
        traffic_volume: int,
    ) -> TrafficRecord:
        """Build a record from a naive local time, deriving its id and aware event time."""
        # The round trip through UTC maps a wall-clock time that does not exist (the
        # spring-forward hour) to the real instant, so id and time always agree.
        event_time = local_time.replace(tzinfo=STATION_TZ).astimezone(UTC).astimezone(STATION_TZ)
        return cls(
            schema_version=SCHEMA_VERSION,
            event_id=event_id_for(station_id, event_time),
            station_id=station_id,
            event_time=event_time,
            temp=temp,
            rain_1h=rain_1h,
            snow_1h=snow_1h,
            clouds_all=clouds_all,
            weather=[WeatherCondition(main=m, description=d) for m, d in weather],
            holiday=holiday,
            traffic_volume=traffic_volume,
        )

    @cached_property
    def local_time(self) -> datetime:
        """Naive wall-clock time at the station: the clock that drives traffic.

        Cached: features, history and result rows all ask for it, and the time-zone
        conversion was 9 % of the core's time per record.
        """
        return self.event_time.astimezone(STATION_TZ).replace(tzinfo=None)

    @cached_property
    def wall_clock_hour(self) -> int:
        """Whole hours from :data:`EPOCH` to :attr:`local_time`: the key of the record's hour
        in its station's history (lags are by wall-clock hour). Cached: admission, features,
        history and the served weighting all ask for it."""
        return int((self.local_time - EPOCH).total_seconds() // 3600)


def event_id_for(station_id: str, event_time: datetime) -> str:
    """The deterministic id of a station's hour: the same hour always gets the same id.

    Keyed by the station's wall-clock hour, which the source uses too (its
    daylight-saving fall-back hour is one hour with duplicated rows, not two hours).
    """
    local = event_time.astimezone(STATION_TZ) if event_time.tzinfo else event_time
    return f"{station_id}-{local:%Y%m%dT%H}"


def encode(record: TrafficRecord) -> bytes:
    return record.model_dump_json().encode("utf-8")


def decode(data: bytes) -> TrafficRecord:
    """Parse and validate one record, or raise :class:`DecodeError` saying why not."""
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError("oversized", f"{len(data)} bytes exceeds {MAX_RECORD_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", str(exc)) from None
    try:
        record = TrafficRecord.model_validate_json(text)
    except ValidationError as exc:
        raise _classify(text, exc) from None
    # From the cached local time, which the features need anyway: one time-zone conversion a record.
    expected = event_id_for(record.station_id, record.local_time)
    if record.event_id != expected:
        raise DecodeError("event_id_mismatch", f"event_id {record.event_id!r} should be {expected!r}")
    return record


def _classify(text: str, exc: ValidationError) -> DecodeError:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return DecodeError("invalid_json", first["msg"])
    if any(e["loc"] == ("schema_version",) and e["type"] == "literal_error" for e in errors):
        try:
            version = json.loads(text).get("schema_version")
        except (ValueError, AttributeError):
            version = "?"
        return DecodeError(
            "unsupported_schema_version", f"schema_version {version} is not one of {SUPPORTED_VERSIONS}"
        )
    if first["type"] == "model_type":
        return DecodeError("invalid_json", "the payload is not a JSON object")
    detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in errors[:5])
    return DecodeError("invalid_field", detail)
