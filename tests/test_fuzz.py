"""Property-based fuzzing of the decoder and the featurizer (hypothesis)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.features import FEATURE_COLUMNS, ONLINE_ONLY_FEATURES, StationHistory
from core.processing import RawRecord, process_batch
from core.schema import REASONS, DecodeError, TrafficRecord, decode, encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
FIELDS = ["schema_version", "event_id", "station_id", "event_time", "temp", "rain_1h", "snow_1h", "clouds_all",
          "weather", "holiday", "traffic_volume"]


def valid_payload(hour: int = 0) -> dict:
    record = TrafficRecord.build(
        station_id="301", local_time=datetime(2017, 6, 1) + timedelta(hours=hour), temp=290.0, rain_1h=0.0,
        snow_1h=0.0, clouds_all=40, weather=[("Clouds", "broken clouds")], holiday=None, traffic_volume=4000,
    )
    return json.loads(encode(record))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_fail_with_a_reason(data):
    try:
        record = decode(data)
    except DecodeError as exc:
        assert exc.reason in REASONS and exc.message
    else:
        assert isinstance(record, TrafficRecord)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), json_values)
def test_any_field_replaced_by_any_json_value_is_accepted_or_refused_cleanly(field, value):
    payload = valid_payload()
    payload[field] = value
    try:
        text = json.dumps(payload, allow_nan=True)
    except (TypeError, ValueError):
        return
    try:
        record = decode(text.encode())
    except DecodeError as exc:
        assert exc.reason in REASONS
    else:
        # Whatever was accepted is within the schema's bounds.
        assert record.traffic_volume >= 0
        assert all(math.isfinite(v) for v in (record.rain_1h, record.snow_1h) if v is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-48, max_value=400),  # hour offset: gaps, duplicates, out of order
            st.integers(min_value=0, max_value=8000),
            st.one_of(st.none(), st.floats(min_value=0, max_value=400)),  # temperature in K, faults included
            st.floats(min_value=0, max_value=20000),  # rain, outliers included
        ),
        min_size=1,
        max_size=60,
    )
)
def test_featurizer_and_processing_never_fail_and_account_for_every_record(hours):
    raws = []
    for i, (offset, volume, temp, rain) in enumerate(hours):
        record = TrafficRecord.build(
            station_id="301", local_time=datetime(2017, 3, 10) + timedelta(hours=offset), temp=temp, rain_1h=rain,
            snow_1h=0.0, clouds_all=0, weather=[("Clear", "sky is clear")], holiday=None, traffic_volume=volume,
        )
        raws.append(RawRecord(encode(record), "s", str(i)))
    states: dict = {}
    out = process_batch(raws, states, None, "now")
    assert len(out.rows) + len(out.dead_letters) == len(raws)
    assert len({r["event_id"] for r in out.rows}) == len(out.rows)  # no hour predicted twice
    assert all(math.isfinite(r["online_prediction"]) for r in out.rows)
    history = StationHistory()
    for raw in raws[:5]:
        features = history.features(decode(raw.data))
        assert set(features) == set(FEATURE_COLUMNS + ONLINE_ONLY_FEATURES)
