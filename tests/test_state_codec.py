"""The state snapshot format: exact restores, refusals of what cannot be trusted, upgrades, and a
consumer that stops only the shard whose state it cannot load."""

import dataclasses
import json
import logging
import pickle
import zlib
from datetime import datetime, timedelta

import pytest

from consumer.checkpoints import EMPTY, Checkpoint, CheckpointStore
from core import dataset, state_codec, synthetic
from core.drift import ErrorDrift
from core.intervals import ConformalBand
from core.ensemble import Combiner
from core.features import StationHistory
from core.online_model import OnlineModel, build_regressor, regressor_snapshot
from core.processing import RawRecord, StationState, process_batch
from core.schema import TrafficRecord, encode
from core.state_codec import (
    FORMAT,
    UPGRADES,
    VERSION,
    LegacyStateError,
    StateSnapshotError,
    dump_states,
    load_states,
)


class LagPredictor:
    """A batch model that errs differently from the online one, so the combiner learns both errors."""

    version = "lag"

    def predict(self, frame):
        return frame["lag_24h"].fillna(frame["lag_1h"]).fillna(1000.0).to_numpy() * 1.02


def stream(hours: int, start: str = "2015-12-10") -> list[RawRecord]:
    """Two stations' hours with skipped hours, a gap and holidays, interleaved as on a shard."""
    raws = []
    for station, seed in (("301", 1), ("302", 2)):
        frame = synthetic.generate(start=start, hours=hours, seed=seed, missing_rate=0.1, gap=(300, 30))
        raws += [RawRecord(encode(r), "shard", "", station) for r in dataset.to_records(frame, station)]
    raws.sort(key=lambda r: (json.loads(r.data)["event_time"], r.partition_key))
    return [RawRecord(r.data, r.shard_id, f"{i:020d}", r.partition_key) for i, r in enumerate(raws)]


def learned(raws: list[RawRecord]) -> dict[str, StationState]:
    states: dict[str, StationState] = {}
    for i in range(0, len(raws), 200):
        process_batch(raws[i : i + 200], states, LagPredictor(), "t")
    return states


def document(blob: bytes) -> dict:
    header, body = blob.split(b"\n")
    return {**json.loads(header), "stations": json.loads(body)}


def reencoded(blob: bytes, change) -> bytes:
    """``blob`` with its document changed by ``change`` (which edits it in place), encoded again."""
    doc = document(blob)
    change(doc)
    return state_codec.encode(doc)


# -- exact restores -------------------------------------------------------------------------------


def test_a_restored_state_predicts_and_learns_bit_for_bit_like_the_original_and_a_pickled_copy():
    raws = stream(24 * 40)
    cut = len(raws) * 3 // 4
    original = learned(raws[:cut])
    assert {len(s.history.holiday_dates) for s in original.values()} == {2}  # Christmas, New Year's Day
    blob = dump_states(original)
    restored, pickled = load_states(blob), pickle.loads(pickle.dumps(original))
    assert dump_states(restored) == blob
    rows = [process_batch(raws[cut:], states, LagPredictor(), "t").rows for states in (original, restored, pickled)]
    assert rows[0] == rows[1] == rows[2]  # every prediction, ==
    assert len(rows[0]) > 400 and len({r["online_prediction"] for r in rows[0]}) == len(rows[0])
    assert dump_states(original) == dump_states(restored) == dump_states(pickled)
    for a, b in zip(original["301"].online.regressors, restored["301"].online.regressors, strict=True):
        assert a.regressor.weights == b.regressor.weights and list(a.regressor.weights) == list(b.regressor.weights)
        assert dict(a.regressor.optimizer.g2) == dict(b.regressor.optimizer.g2)
        assert (a.regressor.optimizer.n_iterations, a.regressor.intercept) == (
            b.regressor.optimizer.n_iterations, b.regressor.intercept)
        assert (a.var.mean.n, a.var.mean.get(), a.var.get()) == (b.var.mean.n, b.var.mean.get(), b.var.get())
        assert type(a.regressor.loss) is type(b.regressor.loss)


def test_a_snapshot_is_plain_data_in_a_versioned_envelope():
    doc = document(dump_states(learned(stream(24 * 3))))
    assert (doc["format"], doc["version"], sorted(doc["stations"])) == (FORMAT, VERSION, ["301", "302"])
    assert sorted(doc["stations"]["301"]) == ["band", "combiner", "drift", "history", "latest", "online"]
    assert [r["loss"] for r in doc["stations"]["301"]["online"]["regressors"]] == ["absolute", "squared"]

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    assert plain(doc)
    assert dump_states({}) == dump_states({}) and load_states(dump_states({})) == {}


# -- what is refused ------------------------------------------------------------------------------


def _station(change):
    def edit(doc):
        change(doc["stations"]["301"])
    return edit


def _regressor(change):
    return _station(lambda s: change(s["online"]["regressors"][0]))


TAMPERED = {
    "a flipped byte": lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 0x01]) + b[len(b) // 2 + 1 :],
    "a number changed": lambda b: b.replace(b'"last_hour":', b'"last_hour":1'),
    "truncated": lambda b: b[:-9],
    "empty": lambda b: b"",
    "no header": lambda b: b.split(b"\n")[1],
    "no stations": lambda b: b.split(b"\n")[0],
    "not JSON": lambda b: b"\x00 not json\n{}",
    "a header that is not an object": lambda b: b"[1, 2]\n" + b.split(b"\n")[1],
    "another format": lambda b: reencoded(b, lambda d: d.update(format="something-else")),
    "stations that are not an object": lambda b: reencoded(b, lambda d: d.update(stations=[])),
    "stations that are not JSON": lambda b: b'{"format":"%s","version":1,"crc32":%d}\n{' % (
        FORMAT.encode(), zlib.crc32(b"{")),
    "a history without hours": lambda b: reencoded(b, _station(lambda s: s["history"].pop("hours"))),
    "hours not base64": lambda b: reencoded(b, _station(lambda s: s["history"].update(hours="!!"))),
    "fewer volumes than hours": lambda b: reencoded(b, _station(lambda s: s["history"].update(volumes="AQAAAAAAAAA="))),
    "a holiday that is no date": lambda b: reencoded(b, _station(lambda s: s["history"].update(holidays=[["x", None]]))),
    "a count that is text": lambda b: reencoded(b, _station(lambda s: s["online"].update(updates="many"))),
    "a count too large": lambda b: reencoded(b, _station(lambda s: s["online"].update(updates=float("inf")))),
    "no regressors": lambda b: reencoded(b, _station(lambda s: s["online"].update(regressors=[]))),
    "an unknown loss": lambda b: reencoded(b, _regressor(lambda r: r.update(loss="huber"))),
    "a term that is a number": lambda b: reencoded(b, _station(lambda s: s["online"]["terms"].__setitem__(0, 7))),
    "a term twice": lambda b: reencoded(b, _station(lambda s: s["online"]["terms"].__setitem__(1, s["online"]["terms"][0]))),
    "weights cut short": lambda b: reencoded(b, _regressor(lambda r: r.update(weights=r["weights"][:12]))),
    "a list for an error": lambda b: reencoded(b, _station(lambda s: s["combiner"].update(batch_error=[1.0]))),
    "a code-naming object": lambda b: reencoded(b, _station(lambda s: s.update(online={"__reduce__": "os.system"}))),
}


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_tampered_or_corrupt_snapshot_raises_a_snapshot_error(tamper):
    blob = dump_states(learned(stream(24 * 2)))
    with pytest.raises(StateSnapshotError):
        load_states(tamper(blob))


@pytest.mark.parametrize("version", [VERSION + 1, 99, -1, "1", None, 1.0, True])
def test_a_snapshot_of_an_unknown_version_raises(version):
    blob = reencoded(dump_states({"301": StationState()}), lambda d: d.update(version=version))
    with pytest.raises(StateSnapshotError, match=f"version {version!r} is unknown"):
        load_states(blob)


class _Trap:
    """Unpickling this would call :func:`_sprung`."""

    def __reduce__(self):
        return _sprung, ()


SPRUNG = []


def _sprung():
    SPRUNG.append(True)


def test_a_pickle_is_refused_without_being_unpickled_and_the_error_names_the_migration():
    for blob in (pickle.dumps({"301": _Trap()}), pickle.dumps({"301": StationState()}), pickle.dumps({}, 2)):
        with pytest.raises(LegacyStateError, match="python -m infra migrate-state"):
            load_states(blob)
    assert SPRUNG == []
    assert issubclass(LegacyStateError, StateSnapshotError)


def test_a_regressor_of_another_configuration_is_not_saved_in_part():
    regressor = build_regressor()
    regressor.regressor.l1 = 0.1
    with pytest.raises(TypeError, match="no snapshot for this configuration"):
        regressor_snapshot(regressor, [])


# -- upgrades -------------------------------------------------------------------------------------


def test_every_version_before_the_current_one_has_its_upgrade():
    assert sorted(UPGRADES) == list(range(VERSION))


def version_0(states: dict[str, StationState], change) -> bytes:
    """``states`` as a version-0 document (what the migration reads from a pickle), changed by ``change``."""
    def edit(doc):
        doc["version"] = 0
        for station in doc["stations"].values():
            del station["drift"]  # version 2's
            del station["band"], station["latest"]  # version 3's
            change(station)
    return reencoded(dump_states(states), edit)


def without_drift(states: dict[str, StationState]) -> dict[str, StationState]:
    """``states`` with fresh drift detectors, calibration and no newest record: what a snapshot from before version 2 upgrades to."""
    return {station: dataclasses.replace(without_band(state), drift=ErrorDrift()) for station, state in states.items()}


def without_band(state: StationState) -> StationState:
    """``state`` as a snapshot from before version 3 upgrades: fresh intervals, no newest record."""
    return dataclasses.replace(state, band=ConformalBand(), latest=None)


def test_version_0_unchanged_upgrades_to_the_same_states():
    states = learned(stream(24 * 3))
    assert dump_states(load_states(version_0(states, lambda s: None))) == dump_states(without_drift(states))


def test_version_1_upgrades_with_fresh_detectors_that_then_detect_as_a_fresh_stations_do():
    states = learned(stream(24 * 3))

    def to_version_1(doc):
        doc["version"] = 1
        for station in doc["stations"].values():
            del station["drift"], station["band"], station["latest"]
    upgraded = load_states(reencoded(dump_states(states), to_version_1))
    expected = without_drift(states)
    assert dump_states(upgraded) == dump_states(expected)
    shifted = [RawRecord(r.data.replace(b'"traffic_volume":', b'"traffic_volume":1'), r.shard_id, r.sequence_number)
               for r in stream(24 * 6)[24 * 3:]]
    assert process_batch(shifted, upgraded, None, "t").drift_events == process_batch(shifted, expected, None, "t").drift_events


def test_restored_detectors_detect_exactly_what_the_saved_ones_would_have():
    """Saved just before a level shift, the detectors' running sums come back bit for bit:
    the restored state detects the same events at the same hours."""
    states = learned(stream(24 * 6))
    restored = load_states(dump_states(states))
    shifted = [RawRecord(r.data.replace(b'"traffic_volume":', b'"traffic_volume":1'), r.shard_id, r.sequence_number)
               for r in stream(24 * 9)[24 * 6:]]
    events = process_batch(shifted, states, None, "t").drift_events
    assert events and events == process_batch(shifted, restored, None, "t").drift_events
    assert dump_states(states) == dump_states(restored)


def test_version_2_upgrades_with_a_fresh_calibration_that_then_gives_a_fresh_stations_intervals():
    states = learned(stream(24 * 20))

    def to_version_2(doc):
        doc["version"] = 2
        for station in doc["stations"].values():
            del station["band"], station["latest"]
    upgraded = load_states(reencoded(dump_states(states), to_version_2))
    expected = {station: without_band(state) for station, state in states.items()}
    assert dump_states(upgraded) == dump_states(expected)
    later = stream(24 * 40)[24 * 20:]
    rows = process_batch(later, upgraded, None, "t").rows
    assert rows == process_batch(later, expected, None, "t").rows
    assert rows[0]["served_lower_90"] is None and rows[-1]["served_lower_90"] is not None


def test_restored_calibration_gives_exactly_the_intervals_the_saved_one_would_have():
    states = learned(stream(24 * 20))
    restored = load_states(dump_states(states))
    later = stream(24 * 30)[24 * 20:]
    rows = process_batch(later, states, None, "t").rows
    assert rows[0]["served_upper_80"] is not None
    assert rows == process_batch(later, restored, None, "t").rows
    assert dump_states(states) == dump_states(restored)


def hours(n: int, start=datetime(2017, 5, 1)) -> list[RawRecord]:
    return [
        RawRecord(encode(TrafficRecord.build(
            station_id="301", local_time=start + timedelta(hours=i), temp=290.0, rain_1h=0.0, snow_1h=0.0,
            clouds_all=0, weather=[("Clear", "sky is clear")], holiday=None, traffic_volume=1000 + 10 * i,
        )), "shard-0", f"{i:020d}", "301")
        for i in range(n)
    ]


def test_a_station_without_a_combiner_upgrades_with_a_fresh_one():
    restored = load_states(version_0({"301": StationState()}, lambda s: s.pop("combiner")))
    assert restored["301"].combiner == Combiner()
    out = process_batch(hours(3), restored, LagPredictor(), "now")
    assert [r["online_updates"] for r in out.rows] == [1, 2, 3] and out.rows[0]["served_prediction"] is not None


def test_an_online_model_with_one_regressor_upgrades_to_both_the_squared_one_a_copy_of_it():
    states: dict[str, StationState] = {}
    process_batch(hours(48), states, None, "now")
    absolute = states["301"].online.regressors[0]

    def single(station):
        online = station["online"]
        online["regressor"] = online.pop("regressors")[0]

    restored = load_states(version_0(states, single))["301"].online
    assert [type(r.regressor.loss).__name__ for r in restored.regressors] == ["Absolute", "Squared"]
    assert restored.regressors[0].regressor.weights == restored.regressors[1].regressor.weights
    terms = {"how_3": 1.0}
    assert restored._predict(terms) == float(absolute.predict_one(terms))  # continues where it stopped
    assert restored.updates == 48
    restored.learn({"hour_of_week": 3.0, "hour": 3.0, "is_holiday": 0.0, "is_day_off": 0.0, "lag_1h_est": 900.0,
                    "lag_2h": 800.0, "wk4_mean": 1000.0, "mean_24h": 1000.0}, 5000.0)
    assert restored.regressors[0].regressor.weights != restored.regressors[1].regressor.weights


def test_holidays_without_names_upgrade_to_dates_that_still_mark_holidays():
    christmas = datetime(2017, 12, 25)
    state = StationState()
    state.history.observe(TrafficRecord.build(
        station_id="301", local_time=christmas, temp=290.0, rain_1h=0.0, snow_1h=0.0, clouds_all=0,
        weather=[("Clear", "sky is clear")], holiday="Christmas Day", traffic_volume=500))

    def unnamed(station):
        station["history"]["holidays"] = [day for day, _ in station["history"]["holidays"]]

    history = load_states(version_0({"301": state}, unnamed))["301"].history
    assert history.holiday_dates == {christmas.date(): None}
    later = TrafficRecord.build(station_id="301", local_time=christmas + timedelta(hours=9), temp=290.0, rain_1h=0.0,
                                snow_1h=0.0, clouds_all=0, weather=[("Clear", "sky is clear")], holiday=None,
                                traffic_volume=1)
    f = history.features(later)
    assert (f["is_holiday"], f["is_day_off"]) == (1.0, 0.0)


def test_a_combiner_without_the_carried_residual_upgrades_without_one():
    state = StationState(combiner=Combiner(batch_error=10.0, online_error=40.0))

    def older(station):
        for name in ("residual", "residual_hour", "residual_lagged", "residual_square"):
            del station["combiner"][name]

    restored = load_states(version_0({"301": state}, older))["301"].combiner
    assert (restored.batch_error, restored.online_error) == (10.0, 40.0)
    assert restored.predict(1000.0, 1000.0, hour=5) == 1000.0
    restored.learn(1100.0, 1000.0, 1000.0, hour=5)
    restored.learn(1100.0, 1000.0, 1000.0, hour=6)
    assert restored.predict(1000.0, 1000.0, hour=7) > 1000.0


def test_the_snapshot_methods_round_trip_each_class():
    state = learned(stream(24 * 3))["302"]
    for part, cls in ((state.history, StationHistory), (state.online, OnlineModel), (state.combiner, Combiner)):
        assert cls.from_snapshot(part.to_snapshot()).to_snapshot() == part.to_snapshot()


# -- the consumer ---------------------------------------------------------------------------------


class FakeKinesis:
    """Open shards, each a list of records; an iterator is ``shard|position``."""

    def __init__(self, shards: dict[str, list[dict]]) -> None:
        self.shards = shards
        self.reads = {shard: 0 for shard in shards}

    def list_shards(self, **_):
        return {"Shards": [{"ShardId": shard} for shard in self.shards]}

    def get_shard_iterator(self, StreamName, ShardId, ShardIteratorType, StartingSequenceNumber=None):  # noqa: N803
        records = self.shards[ShardId]
        start = 0 if ShardIteratorType == "TRIM_HORIZON" else 1 + next(
            i for i, r in enumerate(records) if r["SequenceNumber"] == StartingSequenceNumber)
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator, Limit):  # noqa: N803
        shard, start = ShardIterator.split("|")
        self.reads[shard] += 1
        batch = self.shards[shard][int(start) : int(start) + Limit]
        return {"Records": batch, "NextShardIterator": f"{shard}|{int(start) + len(batch)}", "MillisBehindLatest": 0}


class FakeCheckpoints(CheckpointStore):
    """:class:`consumer.checkpoints.CheckpointStore` over dicts: its reads of manifests and
    segments as they are, its writes to DynamoDB and S3 replaced."""

    def __init__(self, checkpoints: dict, objects: dict[str, bytes]) -> None:
        super().__init__(None, None, "table", "bucket", "app")
        self.checkpoints, self.objects, self.writes = checkpoints, objects, []

    def get(self, shard_id):
        return self.checkpoints.get(shard_id, EMPTY)

    def read_object(self, key):
        return self.objects[key]

    def begin(self, shard_id, pending_until, fence=None):
        self.writes.append(("begin", shard_id))

    def put_object(self, key, blob):
        self.objects[key] = blob

    def commit(self, shard_id, sequence_number, state_key, shard_end=False, fence=None, written=()):
        self.writes.append(("commit", shard_id))
        self.checkpoints[shard_id] = Checkpoint(sequence_number, None, state_key, shard_end)
        return self.checkpoints[shard_id]

    def discard_state(self, state_key):
        self.objects.pop(state_key, None)


class FakeResults:
    def __init__(self, seed: bytes | None = None) -> None:
        self.seed, self.rows = seed, []

    def read_seed(self):
        return self.seed

    def write_rows(self, rows):
        self.rows.extend(rows)

    def write_dead_letters(self, letters, now):
        return None


def shard_records(station: str, n: int) -> list[dict]:
    return [{"Data": r.data, "SequenceNumber": f"{i + 1:020d}", "PartitionKey": station}
            for i, r in enumerate(hours(n, start=datetime(2017, 5, 1)))]


def run_consumer(checkpoints: FakeCheckpoints, results: FakeResults, kinesis: FakeKinesis, polls: int = 6):
    from consumer.worker import Consumer
    from core.config import Settings

    consumer = Consumer(Settings.from_env({"TRAFFIC_BATCH_SIZE": "10"}), kinesis, results, checkpoints, None)
    try:
        for _ in range(polls):
            consumer.poll()
    finally:
        consumer.close()
    return consumer


def test_the_consumer_stops_only_the_shard_whose_state_is_tampered_and_leaves_its_checkpoint(caplog):

    tampered = dump_states({"301": StationState()})[:-9]
    bad = Checkpoint("00000000000000000002", None, "state/a/2.jsonl", False)
    checkpoints = FakeCheckpoints({"shard-a": bad}, {"state/a/2.jsonl": tampered})
    kinesis = FakeKinesis({"shard-a": shard_records("301", 30), "shard-b": shard_records("302", 30)})
    results = FakeResults()
    with caplog.at_level(logging.ERROR, logger="consumer.worker"):
        consumer = run_consumer(checkpoints, results, kinesis)
    assert consumer.cursors["shard-a"].stopped.startswith("StateSnapshotError")
    assert checkpoints.checkpoints["shard-a"] is bad and checkpoints.objects["state/a/2.jsonl"] == tampered
    assert kinesis.reads["shard-a"] == 0 and not [w for w in checkpoints.writes if w[1] == "shard-a"]
    stops = [r.getMessage() for r in caplog.records if "shard-a" in r.getMessage()]
    assert len(stops) == 1 and "stopped" in stops[0] and "state/a/2.jsonl" in stops[0]
    assert len(results.rows) == 30 and consumer.stats.failures == 0  # the other shard went on
    assert checkpoints.checkpoints["shard-b"].sequence_number == "00000000000000000030"


def test_the_consumer_refuses_a_pickled_seed_with_the_migration_to_run(caplog):
    checkpoints = FakeCheckpoints({}, {})
    kinesis = FakeKinesis({"shard-a": shard_records("301", 5)})
    with caplog.at_level(logging.ERROR, logger="consumer.worker"):
        consumer = run_consumer(checkpoints, FakeResults(seed=pickle.dumps({"301": StationState()})), kinesis, polls=3)
    assert consumer.cursors["shard-a"].stopped.startswith("LegacyStateError")
    assert checkpoints.writes == [] and "shard-a" not in checkpoints.checkpoints
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "python -m infra migrate-state" in messages[0]
