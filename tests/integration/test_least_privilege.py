"""Least privilege, enforced: each component runs with its own keys and is denied the rest.

moto enforces IAM once ``INITIAL_NO_AUTH_ACTION_COUNT`` actions have been made. Seen
here: S3 checks resource ARNs while Kinesis checks actions only, so the ARN scoping of the
Kinesis and DynamoDB statements is checked on the documents (tests/test_policies.py).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from core.schema import encode
from infra.emulator import wait_for_port
from infra.policies import POLICIES
from infra.provision import Provisioner
from tests.conftest import free_port

pytestmark = pytest.mark.integration

ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'


@pytest.fixture
def enforcing_moto(tmp_path):
    port = free_port()
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "4", "PATH": "/usr/bin:/bin"}
    log = open(tmp_path / "moto-iam.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, 30, process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def denied(call) -> bool:
    try:
        call()
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException") or (
            code == "403" and "AccessDenied" in str(exc))  # moto's Kinesis answers with an XML body
    return False


def test_each_component_can_do_its_job_and_nothing_else(enforcing_moto, settings, monkeypatch, tmp_path,
                                                        synthetic_records, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("AWS_ENDPOINT_URL", enforcing_moto)
    bootstrap = boto3.client("iam", region_name="us-east-1")
    # The four unauthenticated actions moto allows: an administrator for the provisioning.
    bootstrap.create_user(UserName="admin")
    arn = bootstrap.create_policy(PolicyName="admin", PolicyDocument=ADMIN_POLICY)["Policy"]["Arn"]
    bootstrap.attach_user_policy(UserName="admin", PolicyArn=arn)
    key = bootstrap.create_access_key(UserName="admin")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    provisioner = Provisioner(settings)
    provisioner.create()
    credentials = tmp_path / "credentials"
    profiles = provisioner.create_users(credentials)
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    assert profiles == provisioner.create_users(credentials)  # idempotent
    secrets = [line.split("=", 1)[1].strip() for line in credentials.read_text().splitlines()
               if line.startswith("aws_secret_access_key")]
    assert len(secrets) == 3 and not any(secret in caplog.text for secret in secrets)  # never logged

    # moto matches Kinesis (and DynamoDB) permissions on the action alone, so it denies a
    # stream-scoped Allow: mirror those statements unscoped, as moto understands them. The
    # actions stay exactly the component's; the ARN scoping is checked on the documents.
    resources = provisioner.resources()
    admin_iam = boto3.session.Session().client("iam", region_name="us-east-1")
    for component, build in POLICIES.items():
        statements = [{**st, "Resource": "*"} for st in build(resources)["Statement"]
                      if any(a.startswith(("kinesis:", "dynamodb:")) for a in st["Action"])]
        if not statements:
            continue
        mirror = admin_iam.create_policy(PolicyName=f"moto-mirror-{component}-{settings.resource_prefix}",
                                         PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        admin_iam.attach_user_policy(UserName=profiles[component], PolicyArn=mirror["Policy"]["Arn"])

    def client(component: str, service: str):
        session = boto3.session.Session(profile_name=profiles[component], region_name="us-east-1")
        return session.client(service)

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    stream, bucket, table = settings.stream_name, settings.bucket, settings.checkpoint_table
    data = encode(synthetic_records[0])

    producer_kinesis, producer_s3 = client("producer", "kinesis"), client("producer", "s3")
    consumer_kinesis, consumer_s3 = client("consumer", "kinesis"), client("consumer", "s3")
    trainer_s3, trainer_kinesis = client("trainer", "s3"), client("trainer", "kinesis")

    # What each must do.
    producer_kinesis.put_records(StreamName=stream, Records=[{"Data": data, "PartitionKey": "301"}])
    shard = consumer_kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = consumer_kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert consumer_kinesis.get_records(ShardIterator=iterator)["Records"][0]["Data"] == data
    consumer_s3.put_object(Bucket=bucket, Key="predictions/event_date=2017-01-01/x.parquet", Body=b"rows")
    consumer_s3.put_object(Bucket=bucket, Key="dead-letters/shard_id=s/1.jsonl", Body=b"{}")
    consumer_s3.put_object(Bucket=bucket, Key="state/app/s/1.pkl", Body=b"state")
    client("consumer", "dynamodb").update_item(
        TableName=table, Key={"shard_key": {"S": "app#s"}}, UpdateExpression="SET sequence_number = :s",
        ExpressionAttributeValues={":s": {"S": "1"}})
    trainer_s3.put_object(Bucket=bucket, Key="history/part-00000.parquet", Body=b"rows")
    assert trainer_s3.get_object(Bucket=bucket, Key="predictions/event_date=2017-01-01/x.parquet")["Body"].read()

    # What each must not do.
    refusals = {
        "producer reads the stream": lambda: producer_kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"),
        "producer writes results": lambda: producer_s3.put_object(Bucket=bucket, Key="predictions/x", Body=b""),
        "producer deletes the stream": lambda: producer_kinesis.delete_stream(StreamName=stream),
        "consumer puts to the stream": lambda: consumer_kinesis.put_records(
            StreamName=stream, Records=[{"Data": data, "PartitionKey": "301"}]),
        "consumer overwrites history": lambda: consumer_s3.put_object(Bucket=bucket, Key="history/x", Body=b""),
        "consumer deletes results": lambda: consumer_s3.delete_object(
            Bucket=bucket, Key="predictions/event_date=2017-01-01/x.parquet"),
        "consumer writes outside its prefixes": lambda: consumer_s3.put_object(Bucket=bucket, Key="x", Body=b""),
        "consumer writes model artifacts": lambda: consumer_s3.put_object(
            Bucket=settings.mlflow_bucket, Key="artifacts/x", Body=b""),
        "trainer writes results": lambda: trainer_s3.put_object(Bucket=bucket, Key="predictions/x", Body=b""),
        "trainer reads consumer state": lambda: trainer_s3.get_object(Bucket=bucket, Key="state/app/s/1.pkl"),
        "trainer puts to the stream": lambda: trainer_kinesis.put_records(
            StreamName=stream, Records=[{"Data": data, "PartitionKey": "301"}]),
        "trainer writes checkpoints": lambda: client("trainer", "dynamodb").update_item(
            TableName=table, Key={"shard_key": {"S": "app#s"}}, UpdateExpression="SET sequence_number = :s",
            ExpressionAttributeValues={":s": {"S": "2"}}),
    }
    allowed = [what for what, call in refusals.items() if not denied(call)]
    print(f"\n{len(refusals)} forbidden actions tried, {len(refusals) - len(allowed)} denied")
    assert allowed == []
