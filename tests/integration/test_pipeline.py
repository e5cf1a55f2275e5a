"""Producer -> Kinesis -> consumer -> S3, against a real moto server."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from adapters import aws
from core.results import event_time_of
from core.schema import encode
from infra.provision import Provisioner
from monitor.reconcile import dead_letter_event_id, reconcile
from tests.integration import helpers

pytestmark = pytest.mark.integration


@pytest.fixture
def provisioned(settings):
    Provisioner(settings).create(with_iam=False)
    return settings


def test_every_produced_hour_is_predicted_once(provisioned, synthetic_records):
    settings = provisioned.replace(stream_shards=1)
    records = synthetic_records[:1200]
    helpers.produce(settings, records)
    c = helpers.consumer(settings, champion=False)
    helpers.drain(c, len(records))

    rows = helpers.store(settings).read_predictions()
    result = reconcile([r.event_id for r in records], rows["event_id"], [])
    assert result.ok and result.predicted == 1200 and not result.duplicates
    assert [t.isoformat() for t in rows["event_time"]] == [r.event_time.astimezone(UTC).isoformat() for r in records]
    assert rows["online_updates"].tolist() == list(range(1, 1201))
    keys = helpers.store(settings).list_keys("predictions/")
    assert all(k.startswith("predictions/event_month=") and k.endswith(".parquet") for k in keys)
    assert rows["event_date"].tolist() == [r.local_time.date() for r in records]
    assert [t.isoformat() for t in map(event_time_of, rows.to_dict("records"))] == [r.event_time.isoformat() for r in records]
    assert (rows["event_date"].map(lambda d: d.isoformat()[:7]) == rows["event_month"]).all()  # each object its month


def test_bad_records_are_dead_lettered_and_the_stream_goes_on(provisioned, synthetic_records):
    settings = provisioned
    good = synthetic_records[:50]
    kinesis = aws.client("kinesis", settings)
    entries = [{"Data": encode(r), "PartitionKey": "301"} for r in good[:25]]
    bad = [b"{oops", b"\xc3\x28", json.dumps({"schema_version": 3}).encode(), encode(good[3])]
    entries += [{"Data": d, "PartitionKey": "301"} for d in bad]
    entries += [{"Data": encode(r), "PartitionKey": "301"} for r in good[25:]]
    kinesis.put_records(StreamName=settings.stream_name, Records=entries)

    c = helpers.consumer(settings, champion=False)
    helpers.drain(c, len(entries))
    store = helpers.store(settings)
    letters = store.read_dead_letters()
    assert sorted(d["reason"] for d in letters) == sorted(
        ["invalid_json", "invalid_utf8", "unsupported_schema_version", "duplicate_event"]
    )
    assert all(d["payload_base64"] and d["sequence_number"] for d in letters)
    rows = store.read_predictions()
    dead_ids = [e for e in (dead_letter_event_id(d) for d in letters) if e]
    result = reconcile([r.event_id for r in good], rows["event_id"], dead_ids)
    assert result.ok and result.predicted == 50 and result.dead_lettered == 0


def test_a_restarted_consumer_continues_from_its_checkpoint(provisioned, synthetic_records):
    settings = provisioned
    records = synthetic_records[:900]
    helpers.produce(settings, records[:600])
    first = helpers.consumer(settings, champion=False)
    helpers.drain(first, 600)
    helpers.produce(settings, records[600:])
    second = helpers.consumer(settings, champion=False)  # a new process, as after a restart
    helpers.drain(second, 300)

    rows = helpers.store(settings).read_predictions()
    assert len(rows) == 900 and rows["event_id"].is_unique
    # The online model went on learning from where the first consumer stopped.
    assert rows["online_updates"].tolist() == list(range(1, 901))


def test_several_shards_and_a_crash_between_write_and_checkpoint(provisioned, synthetic_records):
    settings = provisioned
    Provisioner(settings).delete()
    settings = settings.replace(stream_shards=3)
    Provisioner(settings).create(with_iam=False)
    records = synthetic_records[:700]
    helpers.produce(settings, records)

    crashing = helpers.consumer(settings, champion=False)

    def crash(*args, **kwargs):
        raise SystemExit("killed between the S3 write and the checkpoint")

    crashing.checkpoints.commit = crash
    with pytest.raises(SystemExit):
        crashing.poll()
    survivor = helpers.consumer(settings, champion=False)
    helpers.drain(survivor, 700)
    rows = helpers.store(settings).read_predictions()
    assert len(rows) == 700 and rows["event_id"].is_unique
