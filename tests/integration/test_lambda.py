"""The Lambda handler, invoked with Kinesis events built from records read back from moto.

Neither moto nor LocalStack runs Lambda code without Docker, so the handler is called
directly with the events the event source mapping would deliver, retries included.
"""

from __future__ import annotations

import json

import base64

import pytest

from adapters import aws
from consumer import lambda_handler
from core import synthetic
from core.processing import RawRecord, process_batch
from core.schema import encode
from infra.provision import Provisioner
from monitor.reconcile import reconcile
from monitor.stream_contents import shard_records
from tests.integration import helpers

pytestmark = pytest.mark.integration


def events_from_stream(settings) -> list[dict]:
    """The stream's records as Lambda's Kinesis event records, in shard order."""
    kinesis = aws.client("kinesis", settings)
    arn = kinesis.describe_stream_summary(StreamName=settings.stream_name)["StreamDescriptionSummary"]["StreamARN"]
    out = []
    for shard_id, records in shard_records(kinesis, settings.stream_name).items():
        for r in records:
            out.append({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                            "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode(),
                            "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
                "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventName": "aws:kinesis:record",
                "eventID": f"{shard_id}:{r['SequenceNumber']}", "awsRegion": "us-east-1",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/traffic-stream-lambda", "eventSourceARN": arn,
            })
    return out


@pytest.fixture
def lambda_env(settings, monkeypatch):
    settings = settings.replace(stream_shards=2)
    monkeypatch.setenv("TRAFFIC_STREAM_SHARDS", "2")
    Provisioner(settings).create(with_iam=False)
    monkeypatch.setattr(lambda_handler, "_processor", None)
    return settings


def emitted_metrics(output: str) -> dict[str, float]:
    """The sums of the metrics in the CloudWatch embedded-metric documents printed to ``output``."""
    sums: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = document[metric["Name"]]
                sums[metric["Name"]] = sums.get(metric["Name"], 0.0) + sum(values if isinstance(values, list) else [values])
    return sums


def test_batches_retries_and_a_failing_station_give_exactly_once(lambda_env, synthetic_records, monkeypatch, capsys):
    settings = lambda_env
    records = synthetic.many_stations(synthetic_records[:200], 4)
    helpers.produce(settings, records)
    events = events_from_stream(settings)
    assert len(events) == 800

    by_shard: dict[str, list[dict]] = {}
    for e in events:
        by_shard.setdefault(e["eventID"].split(":")[0], []).append(e)

    store = lambda_handler.processor().results
    original = store.write_rows
    calls = {"n": 0}

    def flaky_write(rows):
        calls["n"] += 1
        if calls["n"] == 3:  # one station's write fails once, mid-stream
            raise ConnectionError("injected S3 outage")
        return original(rows)

    monkeypatch.setattr(store, "write_rows", flaky_write)
    failures_seen = 0
    for shard_events in by_shard.values():
        position = 0
        while position < len(shard_events):
            batch = shard_events[position : position + 100]
            response = lambda_handler.handler({"Records": batch}, None)
            failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            if failed:
                failures_seen += 1
                # Lambda resumes from the lowest failed sequence number: others come again too.
                lowest = min(failed, key=int)
                position += next(i for i, e in enumerate(batch) if e["kinesis"]["sequenceNumber"] == lowest)
            else:
                position += len(batch)
        # A duplicate delivery of an already committed batch changes nothing.
        assert lambda_handler.handler({"Records": shard_events[:50]}, None) == {"batchItemFailures": []}

    assert failures_seen == 1
    # Each record is counted once in the embedded metrics, by the invocation that committed it.
    emitted = emitted_metrics(capsys.readouterr().out)
    assert (emitted["RecordsRead"], emitted["ResultRows"], emitted["DeadLetters"]) == (800, 800, 0)
    rows = helpers.store(settings).read_predictions()
    result = reconcile([r.event_id for r in records], rows["event_id"], [])
    assert result.ok and result.predicted == 800 and rows["event_id"].is_unique
    assert helpers.store(settings).read_dead_letters() == []

    # Each station's online model is where an uninterrupted run leaves it.
    stations = lambda_handler.processor().stations
    uninterrupted: dict = {}
    process_batch([RawRecord(encode(r), "s", str(i)) for i, r in enumerate(records)], uninterrupted, None, "t")
    for station_id, expected in uninterrupted.items():
        state, version, _ = stations.load(station_id, None)
        assert state.online.updates == expected.online.updates == 200 and version >= 1


def test_infra_deploys_function_role_and_mapping(lambda_env):
    from infra.lambda_deploy import HANDLER, LambdaDeployer, code_zip

    deployer = LambdaDeployer(lambda_env)
    first = deployer.deploy({"ZipFile": code_zip()})
    second = deployer.deploy({"ZipFile": code_zip()})
    assert first["mapping"] == second["mapping"]  # idempotent
    lam = aws.client("lambda", lambda_env)
    mapping = lam.get_event_source_mapping(UUID=first["mapping"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == first["on_failure"]
    assert lambda_env.stream_name in mapping["EventSourceArn"]
    config = lam.get_function(FunctionName=deployer.name)["Configuration"]
    assert config["Handler"] == HANDLER and config["Environment"]["Variables"]["TRAFFIC_BUCKET"] == lambda_env.bucket
