"""AWS faults on >10 % of calls: throttling, partial PutRecords failures, 5xx, connection resets."""

from __future__ import annotations

import pytest

from adapters import aws
from core.schema import encode
from infra.provision import Provisioner
from producer.kinesis_writer import KinesisWriter
from monitor.reconcile import dead_letter_event_id, reconcile
from tests.fault_proxy import FaultProxy
from tests.integration import helpers

pytestmark = pytest.mark.integration


def test_nothing_is_lost_or_duplicated_under_injected_faults(settings, moto_endpoint, monkeypatch, synthetic_records):
    Provisioner(settings).create(with_iam=False)
    records = synthetic_records[:3000]
    with FaultProxy(moto_endpoint, rate=0.15, seed=42) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        writer = KinesisWriter(aws.client("kinesis", settings), settings.stream_name)
        for i in range(0, len(records), 100):  # many PutRecords calls, so each kind of fault hits some
            writer.put([{"Data": encode(r), "PartitionKey": r.station_id} for r in records[i : i + 100]])
        # Batches of 100, so that the consumer too makes enough calls for every kind of fault.
        consumer = helpers.consumer(settings.replace(batch_size=100), champion=False)
        helpers.drain(consumer, len(records), timeout=300)
        # Drain whatever duplicates the lost PutRecords answers put on the stream too.
        while consumer.poll():
            pass
        calls, injected = proxy.calls, dict(proxy.injected)

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    store = helpers.store(settings)
    rows = store.read_predictions()
    letters = store.read_dead_letters()
    result = reconcile([r.event_id for r in records], rows["event_id"], [dead_letter_event_id(d) for d in letters])
    print(f"\ncalls {calls}, injected {sum(injected.values())} ({injected}), rows {len(rows)}, "
          f"dead letters {len(letters)} {sorted({d['reason'] for d in letters})}")
    assert sum(injected.values()) >= 0.10 * calls
    assert set(injected) == {"throttle", "server_error", "reset_before", "reset_after", "partial"}
    assert result.ok and not result.missing and not result.duplicates
    assert result.predicted == len(records)
    # Only the stream's own duplicates (a PutRecords whose answer was lost is sent again),
    # each refused: as a duplicate while its hour is in the lag window, as out of order after.
    assert {d["reason"] for d in letters} <= {"duplicate_event", "out_of_order"}
    assert rows["online_updates"].max() == len(records)  # the online model learned each hour once
