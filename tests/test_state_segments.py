"""A shard's state as segments and a manifest (core.state_segments): what a batch stores, and what survives."""

from __future__ import annotations

import random

import pytest

from core import dataset, synthetic
from core.errors import StateSnapshotError
from core.processing import RawRecord, StationState, process_batch
from core.schema import encode
from core.state_codec import dump_states
from core.state_segments import SegmentedState, encode_manifest, is_manifest


def keys(n: int) -> tuple[str, str]:
    return f"state/app/shard/{n}.jsonl", f"state/app/shard/{n}.manifest.json"


@pytest.fixture(scope="module")
def stations() -> dict[str, StationState]:
    """128 stations with a few weeks of history each, as a shard holds them."""
    states: dict[str, StationState] = {}
    for i in range(128):
        records = dataset.to_records(synthetic.generate(hours=24 * 21, seed=i), f"s{i:03d}")
        process_batch([RawRecord(encode(r), "shard", str(j)) for j, r in enumerate(records)], states, None, "t")
    return states


def stored(plan) -> dict[str, bytes]:
    return dict(plan.uploads)


def reread(state: SegmentedState, objects: dict[str, bytes]) -> SegmentedState:
    manifest = objects[state.key]
    named = set(SegmentedState.read(state.key, manifest, {k: objects[k] for k in set(state.locations.values())}).locations.values())
    return SegmentedState.read(state.key, manifest, {k: objects[k] for k in named})


def test_a_batch_that_touched_one_station_of_128_stores_that_station_and_a_manifest(stations):
    first = SegmentedState.empty().plan(stations, set(stations), *keys(1))
    whole = len(dump_states(stations))
    assert first.written >= whole  # the first commit stores every station
    process_batch([RawRecord(encode(r), "shard", "x") for r in
                   dataset.to_records(synthetic.generate(start="2015-01-22", hours=1, seed=5), "s005")],
                  stations, None, "t")
    second = first.state.plan(stations, {"s005"}, *keys(2))
    one_station = len(dump_states({"s005": stations["s005"]}))
    manifest = len(second.uploads[keys(2)[1]])
    assert second.written == one_station + manifest
    assert manifest < 128 * 100 and second.written < whole / 50, (second.written, whole)
    assert second.replaced == [keys(1)[1]]  # the old manifest; the first segment still holds 127 stations


def test_what_is_read_back_is_what_was_planned_and_loads_the_same_states(stations):
    objects: dict[str, bytes] = {}
    state = SegmentedState.empty()
    rng = random.Random(1)
    for n in range(1, 30):
        touched = set(rng.sample(sorted(stations), rng.choice([1, 5, 60])))
        plan = state.plan(stations, touched, *keys(n))
        objects.update(plan.uploads)
        for key in plan.replaced:
            del objects[key]
        state = plan.state
        back = reread(state, objects)
        assert (back.locations, back.parts, back.sizes) == (state.locations, state.parts, state.sizes)
    restored = back.states()
    assert sorted(restored) == sorted(stations)
    assert all(dump_states({s: restored[s]}) == dump_states({s: stations[s]}) for s in stations)


def test_cleaning_keeps_the_stored_bytes_under_twice_the_live_state_and_copies_less_than_it_writes(stations):
    objects: dict[str, bytes] = {}
    state, touched_bytes, copied_bytes = SegmentedState.empty(), 0, 0
    rng = random.Random(7)
    names = sorted(stations)
    parts = {s: len(dump_states({s: stations[s]})) for s in names}
    for n in range(1, 400):
        touched = set(rng.sample(names, rng.choice([1, 2, 3, 8])))
        plan = state.plan(stations, touched, *keys(n))
        objects.update(plan.uploads)
        for key in plan.replaced:
            del objects[key]
        state = plan.state
        segments = {k for k in objects if not is_manifest(k)}
        assert segments == set(state.locations.values()), "every stored segment is named, every named one stored"
        live = sum(parts.values())
        assert sum(len(objects[k]) for k in segments) <= 2 * live + 4096 * len(segments)
        moved = {s for s, k in state.locations.items() if k == keys(n)[0]} - touched
        touched_bytes += sum(parts[s] for s in touched)
        copied_bytes += sum(parts[s] for s in moved)
    assert copied_bytes <= touched_bytes, (copied_bytes, touched_bytes)


def test_nothing_changed_stores_nothing_and_names_the_same_manifest(stations):
    first = SegmentedState.empty().plan(stations, set(), *keys(1))
    again = first.state.plan(stations, set(), *keys(2))
    assert again.uploads == {} and again.replaced == [] and again.state.key == first.state.key


def test_a_whole_shard_snapshot_reads_as_one_segment_and_its_stations_move_out_as_they_are_touched(stations):
    legacy = "state/app/shard/9-abcd.jsonl"
    state = SegmentedState.read(legacy, None, {legacy: dump_states(stations)})
    assert set(state.locations.values()) == {legacy} and state.sizes == {legacy: 128}
    plan = state.plan(stations, {"s001"}, *keys(10))
    assert plan.state.locations["s002"] == legacy and plan.replaced == []  # still holds 127 live stations
    plan = plan.state.plan(stations, set(sorted(stations)[:70]), *keys(11))  # under half live: all move
    assert legacy in plan.replaced and legacy not in plan.state.locations.values()


def test_a_corrupt_manifest_or_one_naming_a_station_its_segment_lacks_raises_a_snapshot_error(stations):
    segment = dump_states({"s001": stations["s001"]})
    with pytest.raises(StateSnapshotError, match="checksum"):
        SegmentedState.read("m.manifest.json", encode_manifest({"s001": "a.jsonl"})[:-3] + b'"}', {"a.jsonl": segment})
    with pytest.raises(StateSnapshotError, match="without stations"):
        SegmentedState.read("m.manifest.json", encode_manifest({"s001": "a.jsonl", "s002": "a.jsonl"}),
                            {"a.jsonl": segment})
    with pytest.raises(StateSnapshotError, match="not a state manifest"):
        SegmentedState.read("m.manifest.json", segment, {"a.jsonl": segment})
