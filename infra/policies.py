"""IAM policy documents, one per component, each scoped to the resources it must touch.

Pure functions of the resource names and the account, so they are tested without AWS.

>>> arns = Resources(partition="aws", region="us-east-1", account="123456789012", stream="s",
...     bucket="b", mlflow_bucket="m", table="t")
>>> producer_policy(arns)["Statement"][0]["Resource"]
['arn:aws:kinesis:us-east-1:123456789012:stream/s']
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.result_store import DEAD_LETTER_PREFIX, HISTORY_PREFIX, PREDICTIONS_PREFIX, SEED_KEY
from consumer.checkpoints import STATE_PREFIX

VERSION = "2012-10-17"


@dataclass(frozen=True)
class Resources:
    partition: str
    region: str
    account: str
    stream: str
    bucket: str
    mlflow_bucket: str
    table: str

    @property
    def stream_arn(self) -> str:
        return f"arn:{self.partition}:kinesis:{self.region}:{self.account}:stream/{self.stream}"

    @property
    def table_arn(self) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{self.table}"

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def objects_arn(self, bucket: str, prefix: str = "") -> str:
        return f"arn:{self.partition}:s3:::{bucket}/{prefix}*"


def _policy(*statements: dict) -> dict:
    return {"Version": VERSION, "Statement": list(statements)}


def _list(r: Resources, bucket: str, prefixes: list[str], sid: str) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [r.bucket_arn(bucket)],
        "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
    }


def producer_policy(r: Resources) -> dict:
    return _policy(
        {
            "Sid": "PutToTheStream",
            "Effect": "Allow",
            "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
            "Resource": [r.stream_arn],
        }
    )


def consumer_policy(r: Resources) -> dict:
    return _policy(
        {
            "Sid": "ReadTheStream",
            "Effect": "Allow",
            "Action": [
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
            ],
            "Resource": [r.stream_arn],
        },
        {
            "Sid": "WriteResults",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [r.objects_arn(r.bucket, PREDICTIONS_PREFIX), r.objects_arn(r.bucket, DEAD_LETTER_PREFIX)],
        },
        {
            "Sid": "KeepModelState",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [r.objects_arn(r.bucket, STATE_PREFIX)],
        },
        {
            "Sid": "StartFromTrainingState",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:{r.partition}:s3:::{r.bucket}/{SEED_KEY}"],
        },
        {
            "Sid": "Checkpoints",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": [r.table_arn],
        },
        {
            "Sid": "ReadModelArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [r.objects_arn(r.mlflow_bucket)],
        },
        _list(r, r.mlflow_bucket, [""], "ListModelArtifacts"),
    )


def trainer_policy(r: Resources) -> dict:
    return _policy(
        {
            "Sid": "ReadHistory",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [r.objects_arn(r.bucket, PREDICTIONS_PREFIX), r.objects_arn(r.bucket, HISTORY_PREFIX)],
        },
        {
            "Sid": "SeedHistory",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [r.objects_arn(r.bucket, HISTORY_PREFIX)],
        },
        _list(r, r.bucket, [PREDICTIONS_PREFIX, HISTORY_PREFIX], "ListHistory"),
        {
            "Sid": "WriteModelArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [r.objects_arn(r.mlflow_bucket)],
        },
        _list(r, r.mlflow_bucket, [""], "ListModelArtifacts"),
    )


POLICIES = {"producer": producer_policy, "consumer": consumer_policy, "trainer": trainer_policy}
