import json
from datetime import datetime, timedelta

import numpy as np

from core.processing import RawRecord, StationState, process_batch, process_batches
from core.schema import TrafficRecord, encode
from core.state_codec import dump_states, load_states


def raw(record: TrafficRecord | bytes, seq: int) -> RawRecord:
    data = record if isinstance(record, bytes) else encode(record)
    return RawRecord(data, "shard-0", f"{seq:020d}", "301")


def hours(n: int, start=datetime(2017, 5, 1), station="301", step=10) -> list[TrafficRecord]:
    return [
        TrafficRecord.build(
            station_id=station, local_time=start + timedelta(hours=i), temp=290.0, rain_1h=0.0, snow_1h=0.0,
            clouds_all=0, weather=[("Clear", "sky is clear")], holiday=None, traffic_volume=1000 + step * i,
        )
        for i in range(n)
    ]


class CountingPredictor:
    version = "7"

    def __init__(self):
        self.calls = 0

    def predict(self, frame):
        self.calls += 1
        return np.full(len(frame), 1234.0)


def test_bad_records_become_dead_letters_and_the_batch_goes_on():
    good = hours(4)
    batch = [raw(good[0], 1), raw(b"\xff\xfe", 2), raw(good[1], 3), raw(b'{"schema_version": 99}', 4),
             raw(good[1], 5), raw(good[0], 6), raw(good[3], 7)]
    predictor = CountingPredictor()
    out = process_batch(batch, {}, predictor, "now")
    assert [r["event_id"] for r in out.rows] == [good[0].event_id, good[1].event_id, good[3].event_id]
    assert [(d.sequence_number[-1], d.reason) for d in out.dead_letters] == [
        ("2", "invalid_utf8"), ("4", "unsupported_schema_version"), ("5", "duplicate_event"), ("6", "duplicate_event"),
    ]
    assert out.dead_letters[0].as_dict("t")["payload_text"] is None  # raw bytes kept as base64
    assert json.loads(out.dead_letters[1].as_dict("t")["payload_text"]) == {"schema_version": 99}
    assert predictor.calls == 1  # the whole batch in one call


def test_a_late_new_hour_is_used_and_a_too_old_one_refused():
    records = hours(800)
    states: dict = {}
    process_batch([raw(records[0], 0), raw(records[2], 1)], states, None, "now")
    late = process_batch([raw(records[1], 2)], states, None, "now")
    assert [r["event_id"] for r in late.rows] == [records[1].event_id] and not late.dead_letters
    process_batch([raw(r, 3 + i) for i, r in enumerate(records[3:])], states, None, "now")
    # records[1] again is a duplicate; an hour 797 h before the newest is beyond what is remembered.
    out = process_batch([raw(records[1], 900), raw(records[2], 901)], states, None, "now")
    assert [d.reason for d in out.dead_letters] == ["out_of_order", "out_of_order"]
    out = process_batch([raw(records[500], 902)], states, None, "now")
    assert [d.reason for d in out.dead_letters] == ["duplicate_event"]


def test_online_model_predicts_before_it_learns():
    records = hours(50)
    out = process_batch([raw(r, i) for i, r in enumerate(records)], {}, CountingPredictor(), "now")
    assert out.rows[0]["online_prediction"] == 0.0  # nothing learned yet
    assert [r["online_updates"] for r in out.rows] == list(range(1, 51))
    assert out.rows[-1]["online_prediction"] > 1000  # it has learned something
    assert {r["batch_prediction"] for r in out.rows} == {1234.0}
    assert {r["batch_model_version"] for r in out.rows} == {"7"}


def test_without_a_batch_model_rows_still_come_out():
    out = process_batch([raw(r, i) for i, r in enumerate(hours(3))], {}, None, "now")
    assert [r["batch_prediction"] for r in out.rows] == [None, None, None]


def test_processing_is_deterministic_from_a_restored_state():
    records = hours(300)
    raws = [raw(r, i) for i, r in enumerate(records)]
    states: dict[str, StationState] = {}
    process_batch(raws[:200], states, None, "now")
    snapshot = dump_states(states)
    first = process_batch(raws[200:], states, None, "now")
    second = process_batch(raws[200:], load_states(snapshot), None, "now")
    assert first.rows == second.rows


def test_the_served_prediction_leans_on_the_model_that_erred_less_lately():
    records = hours(60)
    # The batch model predicts the truth +5, the online model learns from scratch and is far off.
    exact = type("Exact", (), {"version": "8", "predict": lambda self, f: f["lag_1h"].fillna(1000).to_numpy() + 15})()
    out = process_batch([raw(r, i) for i, r in enumerate(records)], {}, exact, "now")
    first, last = out.rows[0], out.rows[-1]
    assert first["served_prediction"] == 0.6 * first["batch_prediction"] + 0.4 * first["online_prediction"]
    served, batch, online = last["served_prediction"], last["batch_prediction"], last["online_prediction"]
    fixed_error = abs(0.6 * batch + 0.4 * online - last["traffic_volume"])
    assert abs(served - last["traffic_volume"]) < fixed_error
    assert abs(served - batch) < 0.1 * abs(served - online)


class EchoPredictor:
    """Predicts each row's own last-hour lag, so a row matched to the wrong prediction shows."""

    version = "echo"

    def __init__(self):
        self.rows = []

    def predict(self, frame):
        self.rows.append(len(frame))
        return frame["lag_1h"].fillna(-1.0).to_numpy() + 0.5


def test_batches_of_several_shards_predicted_together_equal_each_processed_alone():
    stations = {"301": hours(60), "302": hours(60, start=datetime(2017, 6, 1), station="302", step=-7)}
    shards = {
        "a": [raw(r, i) for i, r in enumerate(stations["301"][:30])] + [raw(b"not json", 30)]
             + [raw(r, 31 + i) for i, r in enumerate(stations["301"][30:59])],
        "b": [RawRecord(encode(r), "shard-1", f"{i:020d}", "302") for i, r in enumerate(stations["302"])],
    }
    alone_states = {name: {} for name in shards}
    together_states = {name: {} for name in shards}
    for start in range(0, 60, 20):
        alone = [process_batch(shards[n][start : start + 20], alone_states[n], EchoPredictor(), "t") for n in shards]
        predictor = EchoPredictor()
        together = process_batches([(shards[n][start : start + 20], together_states[n]) for n in shards], predictor, "t")
        assert together == alone
        assert predictor.rows == [sum(len(o.rows) for o in together)]  # one call for both shards
    assert dump_states(together_states["a"]) == dump_states(alone_states["a"])
    assert [len(o.dead_letters) for o in together] == [0, 0]  # the bad record was in the middle batch
    assert {r["batch_prediction"] for r in together[1].rows} != {r["batch_prediction"] for r in together[0].rows}

