"""infra/ against a real moto server: idempotent create and delete."""

from __future__ import annotations

import json

import pytest

from adapters import aws
from infra.provision import Provisioner

pytestmark = pytest.mark.integration


def test_create_and_delete_are_idempotent(settings):
    settings = settings.replace(stream_shards=2)
    p = Provisioner(settings)
    first = p.create()
    second = p.create()
    assert first == second
    kinesis, s3, iam = aws.client("kinesis", settings), aws.client("s3", settings), aws.client("iam", settings)
    summary = kinesis.describe_stream_summary(StreamName=settings.stream_name)["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE" and summary["OpenShardCount"] == 2
    assert {settings.bucket, settings.mlflow_bucket} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    glue = aws.client("glue", settings)
    table = glue.get_table(DatabaseName=settings.glue_database, Name=settings.glue_table)["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{settings.bucket}/predictions/"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["event_month"]
    types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert (types["event_time"], types["event_date"], types["processed_at"]) == ("timestamp", "date", "timestamp")
    for component, arn in first["policies"].items():
        attached = iam.list_attached_role_policies(RoleName=f"{settings.resource_prefix}-{component}")
        assert [a["PolicyArn"] for a in attached["AttachedPolicies"]] == [arn]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        document = json.loads(document) if isinstance(document, str) else document
        assert any(name in json.dumps(document) for name in (settings.stream_name, settings.bucket, settings.mlflow_bucket))

    p.delete()
    p.delete()
    assert settings.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert settings.stream_name not in kinesis.list_streams()["StreamNames"]
    assert settings.glue_database not in {d["Name"] for d in glue.get_databases()["DatabaseList"]}
