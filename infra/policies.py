"""IAM policy documents, one per component, each allowing exactly the calls it makes.

Pure functions of the resource names and the account, so they are tested without AWS.
Every action here is one the component's code calls in a normal run, and every call it
makes is allowed: ``tests/integration/test_least_privilege.py`` runs each component as
its own IAM user, records its calls (:mod:`infra.call_log`) and checks both directions.
Resources are scoped as tightly as the calls allow: the stream, the table, and in the
bucket the prefixes a component reads or writes.

>>> arns = Resources(partition="aws", region="us-east-1", account="123456789012", stream="s",
...     bucket="b", mlflow_bucket="m", table="t")
>>> producer_policy(arns)["Statement"][0]["Resource"]
['arn:aws:kinesis:us-east-1:123456789012:stream/s']
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.result_store import (
    COMPACTED_PREFIX, DEAD_LETTER_PREFIX, DRIFT_PREFIX, HISTORY_PREFIX, PREDICTIONS_PREFIX, SEED_KEY)
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
    database: str = "traffic_stream"
    catalog_table: str = "predictions"

    @property
    def catalog_arns(self) -> list[str]:
        """What a Glue partition call is authorized on: the catalog, the database and the table."""
        base = f"arn:{self.partition}:glue:{self.region}:{self.account}"
        return [f"{base}:catalog", f"{base}:database/{self.database}", f"{base}:table/{self.database}/{self.catalog_table}"]

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


#: Where the MLflow server keeps artifacts in its bucket (docker-compose: ``--artifacts-destination``).
MLFLOW_ARTIFACTS_PREFIX = "artifacts/"


def producer_policy(r: Resources) -> dict:
    return _policy(
        {"Sid": "PutToTheStream", "Effect": "Allow", "Action": ["kinesis:PutRecords"], "Resource": [r.stream_arn]},
    )


def consumer_policy(r: Resources) -> dict:
    return _policy(
        {
            "Sid": "ReadTheStream",
            "Effect": "Allow",
            "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"],
            "Resource": [r.stream_arn],
        },
        _result_writes(r),
        _state_access(r, "KeepModelState"),
        _seed_read(r),
        {
            # Scan: the lease coordinator reads the workers' heartbeats in one call.
            "Sid": "CheckpointsAndLeases",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
            "Resource": [r.table_arn],
        },
    )


def trainer_policy(r: Resources) -> dict:
    """The retrainer, and ``python -m monitor compact`` (which it also runs): compaction writes
    generations under compacted/, deletes what they replaced, and moves catalog partitions."""
    read = (PREDICTIONS_PREFIX, COMPACTED_PREFIX, HISTORY_PREFIX, DRIFT_PREFIX)
    return _policy(
        {
            # drift/: the consumer's drift events, which bring retrains forward (training.schedule).
            "Sid": "ReadHistory",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [r.objects_arn(r.bucket, p) for p in read],
        },
        {
            "Sid": "WriteHistoryAndCompacted",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [r.objects_arn(r.bucket, p) for p in (HISTORY_PREFIX, COMPACTED_PREFIX)],
        },
        {
            "Sid": "DeleteCompacted",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject"],
            "Resource": [r.objects_arn(r.bucket, p) for p in (PREDICTIONS_PREFIX, COMPACTED_PREFIX)],
        },
        {
            "Sid": "CatalogPartitions",
            "Effect": "Allow",
            "Action": ["glue:BatchCreatePartition", "glue:GetPartitions", "glue:UpdatePartition"],
            "Resource": r.catalog_arns,
        },
        _list(r, r.bucket, list(read), "ListHistory"),
    )


def monitor_policy(r: Resources) -> dict:
    """``python -m monitor watch|compare|reconcile|drift``: read the results, nothing else (the
    history too: ``drift`` compares the stream with the rows the champion was trained on)."""
    prefixes = [PREDICTIONS_PREFIX, COMPACTED_PREFIX, DEAD_LETTER_PREFIX, HISTORY_PREFIX]
    return _policy(
        {
            "Sid": "ReadResults",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [r.objects_arn(r.bucket, prefix) for prefix in prefixes],
        },
        _list(r, r.bucket, prefixes, "ListResults"),
    )


def api_policy(r: Resources) -> dict:
    """``python -m serve``: read the committed state (the table's items, the snapshots they
    name), nothing else; it reaches the champion through the MLflow server."""
    return _policy(
        {
            "Sid": "ReadCheckpoints",
            "Effect": "Allow",
            "Action": ["dynamodb:Scan"],
            "Resource": [r.table_arn],
        },
        {
            "Sid": "ReadState",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [r.objects_arn(r.bucket, STATE_PREFIX)],
        },
    )


def mlflow_policy(r: Resources) -> dict:
    """The MLflow server's artifact store. It proxies artifacts (``--serve-artifacts``), so
    the trainer and the consumer reach model files over HTTP and hold no S3 access to them."""
    return _policy(
        {
            "Sid": "Artifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [r.objects_arn(r.mlflow_bucket, MLFLOW_ARTIFACTS_PREFIX)],
        },
        _list(r, r.mlflow_bucket, [MLFLOW_ARTIFACTS_PREFIX], "ListArtifacts"),
    )


#: What Lambda itself calls with the function's role to run a Kinesis event source mapping
#: with an SQS on-failure destination, and to keep its logs (AWS's Lambda developer guide,
#: the AWSLambdaKinesisExecutionRole managed policy). The handler's own calls are the rest.
LAMBDA_SERVICE_SIDS = ("EventSourceMapping", "OnFailureDestination", "Logs")


def lambda_policy(r: Resources, queue_arn: str, function_name: str) -> dict:
    """The Lambda consumer's role: the handler's calls, then what Lambda calls on its behalf."""
    return _policy(
        _result_writes(r),
        _state_access(r, "KeepStationState"),
        _seed_read(r),
        {
            "Sid": "StationPointers",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": [r.table_arn],
        },
        {
            "Sid": "EventSourceMapping",
            "Effect": "Allow",
            "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                       "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:SubscribeToShard"],
            "Resource": [r.stream_arn],
        },
        {"Sid": "OnFailureDestination", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_arn]},
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"arn:{r.partition}:logs:{r.region}:{r.account}:log-group:/aws/lambda/{function_name}:*"],
        },
    )


def _result_writes(r: Resources) -> dict:
    """A batch's results: rows, dead letters and drift events (:mod:`adapters.result_store`)."""
    return {
        "Sid": "WriteResults",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [r.objects_arn(r.bucket, p) for p in (PREDICTIONS_PREFIX, DEAD_LETTER_PREFIX, DRIFT_PREFIX)],
    }


def _state_access(r: Resources, sid: str) -> dict:
    """Read, write and delete the stream's state: a new object per commit, the one it replaced deleted."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "Resource": [r.objects_arn(r.bucket, STATE_PREFIX)],
    }


def _seed_read(r: Resources) -> dict:
    return {
        "Sid": "StartFromTrainingState",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:{r.partition}:s3:::{r.bucket}/{SEED_KEY}"],
    }


def allowed_actions(document: dict, without_sids: tuple[str, ...] = ()) -> set[str]:
    """Every action a document allows (leaving out the statements ``without_sids``).

    >>> sorted(allowed_actions(monitor_policy(Resources("aws", "r", "1", "s", "b", "m", "t"))))
    ['s3:GetObject', 's3:ListBucket']
    """
    return {a for st in document["Statement"] if st.get("Sid") not in without_sids for a in st["Action"]}


POLICIES = {"producer": producer_policy, "consumer": consumer_policy, "trainer": trainer_policy,
            "monitor": monitor_policy, "api": api_policy, "mlflow": mlflow_policy}
