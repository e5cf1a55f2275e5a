import json
import math
from datetime import datetime

import pytest

from core.schema import MAX_RECORD_BYTES, DecodeError, TrafficRecord, decode, encode, event_id_for


def good(**changes) -> dict:
    record = TrafficRecord.build(
        station_id="301", local_time=datetime(2017, 6, 1, 8), temp=290.0, rain_1h=0.0, snow_1h=0.0,
        clouds_all=40, weather=[("Clouds", "scattered clouds"), ("Mist", "mist")], holiday=None, traffic_volume=5000,
    )
    payload = json.loads(encode(record))
    payload.update(changes)
    return payload


def reason_of(data: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        decode(data)
    return info.value.reason


def test_round_trip_keeps_every_field():
    payload = good()
    record = decode(json.dumps(payload).encode())
    assert record.event_id == "301-20170601T08"
    assert [w.main for w in record.weather] == ["Clouds", "Mist"]
    assert json.loads(encode(record)) == payload


def test_event_id_is_deterministic_and_ignores_the_offset_form():
    a = event_id_for("301", datetime.fromisoformat("2017-06-01T08:00:00-05:00"))
    b = event_id_for("301", datetime.fromisoformat("2017-06-01T13:00:00+00:00"))
    assert a == b == "301-20170601T08"


def test_the_hour_key_follows_the_wall_clock_across_daylight_saving():
    """The fall-back hour (01:00 twice on 2017-11-05) is one key, as it is one id; the next
    wall-clock hour is the next key, though two instants later."""
    first = decode(json.dumps(good(event_time="2017-11-05T01:00:00-05:00", event_id="301-20171105T01")).encode())
    second = decode(json.dumps(good(event_time="2017-11-05T01:00:00-06:00", event_id="301-20171105T01")).encode())
    after = decode(json.dumps(good(event_time="2017-11-05T02:00:00-06:00", event_id="301-20171105T02")).encode())
    assert first.wall_clock_hour == second.wall_clock_hour == after.wall_clock_hour - 1
    assert first.local_time == second.local_time == datetime(2017, 11, 5, 1)
    # The offset is checked against the id through the same wall clock: an hour off is refused.
    assert reason_of(json.dumps(good(event_time="2017-11-05T02:00:00-05:00", event_id="301-20171105T02")).encode()) \
        == "event_id_mismatch"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_utf8"),
        (b"[1, 2, 3]", "invalid_json"),
        (json.dumps(good(schema_version=2)).encode(), "unsupported_schema_version"),
        (json.dumps({k: v for k, v in good().items() if k != "traffic_volume"}).encode(), "invalid_field"),
        (json.dumps(good(traffic_volume="5000")).encode(), "invalid_field"),
        (json.dumps(good(traffic_volume=-1)).encode(), "invalid_field"),
        (json.dumps(good(traffic_volume=10**6)).encode(), "invalid_field"),
        (json.dumps(good(temp=math.nan)).encode(), "invalid_field"),
        (json.dumps(good(rain_1h=math.inf)).encode(), "invalid_field"),
        (json.dumps(good(event_time="yesterday")).encode(), "invalid_field"),
        (json.dumps(good(event_time="2017-06-01T08:00:00")).encode(), "invalid_field"),  # no offset
        (json.dumps(good(weather=[])).encode(), "invalid_field"),
        (json.dumps(good(extra="field")).encode(), "invalid_field"),
        (json.dumps(good(event_id="301-20990101T00")).encode(), "event_id_mismatch"),
        (b" " * (MAX_RECORD_BYTES + 1), "oversized"),
    ],
)
def test_bad_input_is_refused_with_its_reason(data, reason):
    assert reason_of(data) == reason


def test_nan_literal_in_json_is_refused():
    text = json.dumps(good()).replace('"temp": 290.0', '"temp": NaN')
    assert reason_of(text.encode()) == "invalid_field"
