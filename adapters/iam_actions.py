"""The IAM action an AWS API operation is authorized as, and the resource it names.

Most operations are authorized as ``<service>:<Operation>``; S3 is the exception, where
several API operations share one action (listing a bucket is ``s3:ListBucket``, a HEAD
is a read, the parts of a multipart upload are writes). Used to name what a denied call
needed, and to record the actions a component really makes (:mod:`infra.call_log`).

>>> iam_action("kinesis", "PutRecords"), iam_action("s3", "ListObjectsV2"), iam_action("s3", "HeadObject")
('kinesis:PutRecords', 's3:ListBucket', 's3:GetObject')
>>> resource_arn("dynamodb", {"TableName": "t"}, "aws", "eu-west-1", "123456789012")
'arn:aws:dynamodb:eu-west-1:123456789012:table/t'
>>> resource_arn("s3", {"Bucket": "b", "Prefix": "predictions/"}, "aws", "eu-west-1", "123456789012")
'arn:aws:s3:::b'
>>> resource_arn("glue", {"DatabaseName": "d", "TableName": "t"}, "aws", "eu-west-1", "123456789012")
'arn:aws:glue:eu-west-1:123456789012:table/d/t'
"""

from __future__ import annotations

from collections.abc import Mapping

#: S3 API operations whose IAM action is not their own name.
S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjectVersions": "s3:ListBucketVersions",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
}

#: Operations every identity may call: no policy grants or denies them.
UNAUTHORIZED = {"sts:GetCallerIdentity"}


#: The parameters that name a call's resource: all an error message or a call log repeats of a request.
RESOURCE_PARAMS = ("StreamName", "StreamARN", "DatabaseName", "TableName", "Bucket", "Key", "Prefix")


def resource_params(params: Mapping[str, object]) -> dict[str, object]:
    """The parameters of a call that name its resource (never its payload).

    >>> resource_params({"StreamName": "s", "Records": [b"x"]})
    {'StreamName': 's'}
    """
    return {k: params[k] for k in RESOURCE_PARAMS if k in params}


def iam_action(service: str, operation: str) -> str:
    """The IAM action of ``operation`` on ``service`` (the signing name: s3, kinesis, ...)."""
    if service == "s3" and operation in S3_ACTIONS:
        return S3_ACTIONS[operation]
    return f"{service}:{operation}"


def resource_arn(service: str, params: Mapping[str, object], partition: str, region: str, account: str) -> str | None:
    """The ARN of the resource a call's parameters name, if they name one.

    An object's ARN for calls on a key; the bucket's for calls on a bucket (listing, with a
    ``Prefix`` or not: IAM scopes those by the ``s3:prefix`` condition, not by the ARN).
    """
    if service == "s3" and "Bucket" in params:
        key = params.get("Key")
        return f"arn:{partition}:s3:::{params['Bucket']}" + (f"/{key}" if key is not None else "")
    if service == "kinesis":
        if params.get("StreamARN"):
            return str(params["StreamARN"])
        if params.get("StreamName"):
            return f"arn:{partition}:kinesis:{region}:{account}:stream/{params['StreamName']}"
    if service == "dynamodb" and params.get("TableName"):
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{params['TableName']}"
    if service == "glue" and params.get("DatabaseName") and params.get("TableName"):
        return f"arn:{partition}:glue:{region}:{account}:table/{params['DatabaseName']}/{params['TableName']}"
    return None
