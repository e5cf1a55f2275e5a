"""The one-off migration of pickled states to snapshots, against moto in this process (no server)."""

import copy
import json
import pickle
from collections import deque

import boto3
import pytest
from moto import mock_aws
from river import optim

from adapters.result_store import SEED_KEY
from consumer.checkpoints import CheckpointStore
from consumer.lambda_handler import StationStore
from core.drift import ErrorDrift
from core.ensemble import Combiner
from core.intervals import ConformalBand
from core.state_codec import SUFFIX, LegacyStateError, StateSnapshotError, dump_states, load_states
from infra.migrate_state import LEGACY_SEED_KEY, StateMigration, legacy_document, migrate_blob
from tests.legacy_pickles import FIXTURE, fixture_states, legacy_pickle

APP, TABLE, BUCKET = "app", "checkpoints", "bucket"


def test_the_generator_reproduces_the_pickles_the_pickled_format_wrote():
    assert legacy_pickle(fixture_states()) == FIXTURE.read_bytes()


def as_the_old_setstate_read(states, *, combiner=True, single_regressor=False, holiday_names=True,
                             combiner_residual=True):
    """What ``pickle.loads`` made of a checkpoint of that shape, by the ``__setstate__`` patches it replaces."""
    states = copy.deepcopy(states)
    for state in states.values():
        state.drift = ErrorDrift()  # a pickle had no detectors: they start fresh
        state.band, state.latest = ConformalBand(), None  # nor intervals, nor the newest record
        if not combiner:
            state.combiner = Combiner()
        if not combiner_residual:
            state.combiner = Combiner(batch_error=state.combiner.batch_error, online_error=state.combiner.online_error)
        if single_regressor:
            absolute = state.online.regressors[0]
            squared = copy.deepcopy(absolute)
            squared.regressor.loss = optim.losses.Squared()
            state.online.regressors = [absolute, squared]
        if not holiday_names:
            state.history.holiday_dates = dict.fromkeys(state.history.holiday_dates)
    return states


SHAPES = {
    "the last": {},
    "without a combiner": {"combiner": False},
    "with one regressor": {"single_regressor": True},
    "with unnamed holidays": {"holiday_names": False},
    "with a combiner without the residual": {"combiner_residual": False},
    "the oldest": {"combiner": False, "single_regressor": True, "holiday_names": False},
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_a_pickled_state_of_every_shape_migrates_to_what_its_pickle_loaded_as(shape):
    states = fixture_states()
    migrated = load_states(migrate_blob(legacy_pickle(states, **shape)))
    assert dump_states(migrated) == dump_states(as_the_old_setstate_read(states, **shape))


def test_the_legacy_reader_builds_none_of_the_classes_a_pickle_names_but_those_of_our_states():
    class Trap:
        def __reduce__(self):
            return print, ("sprung",)

    class Reach:
        def __reduce__(self):
            return getattr, (deque(), "append")

    with pytest.raises(LegacyStateError, match="names builtins.print"):
        legacy_document(pickle.dumps({"301": Trap()}))
    with pytest.raises(LegacyStateError, match="asks for deque.append"):
        legacy_document(pickle.dumps({"301": Reach()}))
    with pytest.raises(LegacyStateError, match="not a pickled state"):
        legacy_document(FIXTURE.read_bytes()[:-20])
    with pytest.raises(LegacyStateError, match="a dict where a _PickledStationState belongs"):
        legacy_document(pickle.dumps({"301": {}}))


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3, dynamodb = boto3.client("s3"), boto3.client("dynamodb")
        s3.create_bucket(Bucket=BUCKET)
        dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "shard_key", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "shard_key", "KeyType": "HASH"}])
        yield s3, dynamodb


def put(s3, dynamodb, item_key: str, state_key: str, blob: bytes, **attributes) -> None:
    s3.put_object(Bucket=BUCKET, Key=state_key, Body=blob)
    dynamodb.put_item(TableName=TABLE, Item={"shard_key": {"S": item_key}, "state_key": {"S": state_key}, **attributes})


def item(dynamodb, key: str) -> dict:
    return dynamodb.get_item(TableName=TABLE, Key={"shard_key": {"S": key}}, ConsistentRead=True)["Item"]


def keys(s3) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_deployment_migrates_once_pointers_moved_conditionally_and_a_second_run_changes_nothing(aws):
    s3, dynamodb = aws
    states = fixture_states()
    lease = {"sequence_number": {"S": "5"}, "lease_owner": {"S": "w1"}, "lease_counter": {"N": "3"}}
    put(s3, dynamodb, f"{APP}#shardId-000", f"state/{APP}/shardId-000/5-aaaa.pkl", FIXTURE.read_bytes(), **lease)
    oldest = SHAPES["the oldest"]
    put(s3, dynamodb, f"{APP}#shardId-001", f"state/{APP}/shardId-001/7-bbbb.pkl", legacy_pickle(states, **oldest),
        pending_until={"S": "9"})
    station = {"301": states["301"]}
    put(s3, dynamodb, f"{APP}#station#301", f"state/{APP}/station=301/4-cccc.pkl", legacy_pickle(station),
        version={"N": "4"}, last_sequence={"S": "41"})
    put(s3, dynamodb, f"{APP}#shardId-002", f"state/{APP}/shardId-002/3-dddd{SUFFIX}", dump_states(states))
    put(s3, dynamodb, "other#shardId-000", "state/other/shardId-000/1-eeee.pkl", FIXTURE.read_bytes())
    dynamodb.put_item(TableName=TABLE, Item={"shard_key": {"S": f"{APP}#worker#w1"}, "heartbeat": {"N": "1"}})
    s3.put_object(Bucket=BUCKET, Key=f"state/{APP}/shardId-000/2-ffff.pkl", Body=b"a replaced state")
    s3.put_object(Bucket=BUCKET, Key=LEGACY_SEED_KEY, Body=legacy_pickle(states))
    migration = StateMigration(dynamodb, s3, TABLE, BUCKET, APP)
    before = keys(s3)

    dry = migration.run(dry_run=True)
    assert len(dry.migrated) == 3 and dry.seed == "to migrate" and keys(s3) == before
    assert item(dynamodb, f"{APP}#shardId-000")["state_key"]["S"].endswith(".pkl")

    report = migration.run()
    assert sorted(report.migrated) == sorted(dry.migrated) == [
        (f"state/{APP}/shardId-000/5-aaaa.pkl", f"state/{APP}/shardId-000/5-aaaa{SUFFIX}"),
        (f"state/{APP}/shardId-001/7-bbbb.pkl", f"state/{APP}/shardId-001/7-bbbb{SUFFIX}"),
        (f"state/{APP}/station=301/4-cccc.pkl", f"state/{APP}/station=301/4-cccc{SUFFIX}"),
    ]
    assert (report.already, report.moved_meanwhile, report.failed, report.seed) == (1, [], [], "migrated")
    assert report.unreferenced == [f"state/{APP}/shardId-000/2-ffff.pkl"]
    # The checkpoints point at snapshots of the same states; nothing else about them moved.
    shard = item(dynamodb, f"{APP}#shardId-000")
    assert {k: v for k, v in shard.items() if k != "state_key"} == {"shard_key": {"S": f"{APP}#shardId-000"}, **lease}
    checkpoints = CheckpointStore(dynamodb, s3, TABLE, BUCKET, APP)
    loaded = as_the_old_setstate_read(states)
    for shard_id, expected in (("shardId-000", loaded), ("shardId-001", as_the_old_setstate_read(states, **oldest))):
        blob = checkpoints.load_state_blob(checkpoints.get(shard_id))
        assert dump_states(load_states(blob)) == dump_states(expected)
    assert checkpoints.get("shardId-001").pending_until == "9"
    state, version, last = StationStore(dynamodb, s3, TABLE, BUCKET, APP).load("301", None)
    assert (dump_states({"301": state}), version, last) == (dump_states({"301": loaded["301"]}), 4, 41)
    assert dump_states(load_states(s3.get_object(Bucket=BUCKET, Key=SEED_KEY)["Body"].read())) == dump_states(loaded)
    # The pickles are gone but another application's and the one no pointer names.
    after = keys(s3)
    assert {k for k in after if k.endswith(".pkl")} == {"state/other/shardId-000/1-eeee.pkl",
                                                          f"state/{APP}/shardId-000/2-ffff.pkl"}
    assert item(dynamodb, "other#shardId-000")["state_key"]["S"].endswith(".pkl")

    again = migration.run()
    assert (again.migrated, again.already, again.seed, again.failed) == ([], 4, "none", [])
    assert keys(s3) == after


def test_a_pointer_that_moved_meanwhile_is_left_to_whoever_moved_it(aws):
    s3, dynamodb = aws
    put(s3, dynamodb, f"{APP}#shardId-000", f"state/{APP}/shardId-000/5-aaaa.pkl", FIXTURE.read_bytes())
    migration = StateMigration(dynamodb, s3, TABLE, BUCKET, APP)
    moved = migration._move({"S": f"{APP}#shardId-000"}, f"state/{APP}/shardId-000/4-zzzz.pkl",
                            f"state/{APP}/shardId-000/4-zzzz{SUFFIX}", b"snapshot")
    assert not moved and item(dynamodb, f"{APP}#shardId-000")["state_key"]["S"] == f"state/{APP}/shardId-000/5-aaaa.pkl"
    assert keys(s3) == {f"state/{APP}/shardId-000/5-aaaa.pkl"}


def test_a_pickle_that_cannot_be_read_is_reported_and_its_pointer_left(aws):
    s3, dynamodb = aws
    put(s3, dynamodb, f"{APP}#shardId-000", f"state/{APP}/shardId-000/5-aaaa.pkl", b"\x80\x05 damaged")
    s3.put_object(Bucket=BUCKET, Key=SEED_KEY, Body=dump_states({}))
    s3.put_object(Bucket=BUCKET, Key=LEGACY_SEED_KEY, Body=legacy_pickle(fixture_states()))
    report = StateMigration(dynamodb, s3, TABLE, BUCKET, APP).run()
    assert [key for key, _ in report.failed] == [f"state/{APP}/shardId-000/5-aaaa.pkl"]
    assert "not a pickled state" in report.failed[0][1]
    assert item(dynamodb, f"{APP}#shardId-000")["state_key"]["S"].endswith(".pkl")
    # Training wrote a snapshot seed since: it stays, and the pickled one is deleted.
    assert report.seed.startswith("a snapshot seed was there already")
    assert load_states(s3.get_object(Bucket=BUCKET, Key=SEED_KEY)["Body"].read()) == {}
    assert LEGACY_SEED_KEY not in keys(s3)


def test_the_consumer_given_a_pickled_state_names_the_migration():
    with pytest.raises(StateSnapshotError, match="python -m infra migrate-state"):
        load_states(FIXTURE.read_bytes())


def test_the_command_migrates_the_configured_deployment(aws, monkeypatch, capsys):
    from infra.__main__ import main

    s3, dynamodb = aws
    for name, value in (("TRAFFIC_CHECKPOINT_TABLE", TABLE), ("TRAFFIC_BUCKET", BUCKET), ("TRAFFIC_APP_NAME", APP)):
        monkeypatch.setenv(name, value)
    put(s3, dynamodb, f"{APP}#shardId-000", f"state/{APP}/shardId-000/5-aaaa.pkl", FIXTURE.read_bytes())
    assert main(["migrate-state"]) == 0
    assert json.loads(capsys.readouterr().out)["migrated"] == [
        [f"state/{APP}/shardId-000/5-aaaa.pkl", f"state/{APP}/shardId-000/5-aaaa{SUFFIX}"]]
    assert item(dynamodb, f"{APP}#shardId-000")["state_key"]["S"] == f"state/{APP}/shardId-000/5-aaaa{SUFFIX}"
