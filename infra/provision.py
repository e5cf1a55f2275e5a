"""Create and delete every AWS resource of the system, idempotently.

Run it as often as you like: what exists is left as it is (policies are updated to the
current documents). The same code provisions the embedded emulator, LocalStack or real
AWS; which one is decided by the standard AWS configuration alone.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from adapters import aws
from adapters.catalog import Catalog
from core.config import Settings
from infra.policies import POLICIES, Resources, lambda_policy

log = logging.getLogger(__name__)


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@dataclass
class Provisioner:
    settings: Settings

    def __post_init__(self) -> None:
        s = self.settings
        self.kinesis, self.s3, self.dynamodb, self.iam, self.sts, self.glue = aws.clients(
            s, "kinesis", "s3", "dynamodb", "iam", "sts", "glue")
        self.catalog = Catalog(self.glue, s.glue_database, s.glue_table, s.bucket)

    def resources(self) -> Resources:
        identity = self.sts.get_caller_identity()
        partition = identity["Arn"].split(":")[1]
        s = self.settings
        return Resources(partition, s.region, identity["Account"], s.stream_name, s.bucket, s.mlflow_bucket,
                         s.checkpoint_table, s.glue_database, s.glue_table)

    # -- create -----------------------------------------------------------------------------

    def create(self, with_iam: bool = True) -> dict[str, object]:
        s = self.settings
        self.create_stream(s.stream_name, s.stream_shards)
        for bucket in (s.bucket, s.mlflow_bucket):
            self.create_bucket(bucket)
        self.create_table(s.checkpoint_table)
        if s.glue_catalog:
            self.catalog.ensure()
        policies = self.create_iam() if with_iam else {}
        return {"stream": s.stream_name, "buckets": [s.bucket, s.mlflow_bucket], "table": s.checkpoint_table,
                "catalog": f"{s.glue_database}.{s.glue_table}" if s.glue_catalog else None, "policies": policies}

    def create_stream(self, name: str, shards: int) -> None:
        try:
            self.kinesis.create_stream(StreamName=name, ShardCount=shards)
            log.info("created stream %s with %d shard(s)", name, shards)
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
        self.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def create_bucket(self, name: str) -> None:
        kwargs: dict[str, object] = {"Bucket": name}
        if self.settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        try:
            self.s3.create_bucket(**kwargs)
            log.info("created bucket %s", name)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        self.s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
        )

    def create_table(self, name: str) -> None:
        try:
            self.dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "shard_key", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "shard_key", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            log.info("created table %s", name)
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
        self.dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def create_iam(self) -> dict[str, str]:
        """One managed policy and one role per component; returns the policy ARNs."""
        resources = self.resources()
        prefix = self.settings.resource_prefix
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{resources.partition}:iam::{resources.account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        arns = {}
        for component in POLICIES:
            name = f"{prefix}-{component}"
            arn = f"arn:{resources.partition}:iam::{resources.account}:policy/{name}"
            body = json.dumps(self.policy_document(component, resources))
            try:
                self.iam.create_policy(PolicyName=name, PolicyDocument=body, Description=f"traffic-stream {component}")
                log.info("created policy %s", name)
            except ClientError as exc:
                if _code(exc) != "EntityAlreadyExists":
                    raise
                self._update_policy(arn, body)
            try:
                self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
                log.info("created role %s", name)
            except ClientError as exc:
                if _code(exc) != "EntityAlreadyExists":
                    raise
            self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            arns[component] = arn
        self.create_lambda_role(resources)
        return arns

    def lambda_names(self) -> tuple[str, str]:
        """The Lambda consumer's function name and the name of its on-failure queue."""
        function = f"{self.settings.resource_prefix}-consumer-lambda"
        return function, f"{function}-failures"

    def policy_document(self, component: str, resources: Resources | None = None) -> dict:
        """The policy ``component`` (one of :data:`infra.policies.POLICIES`, or ``lambda``) gets here."""
        resources = resources or self.resources()
        if component != "lambda":
            return POLICIES[component](resources)
        function, queue = self.lambda_names()
        return lambda_policy(resources, f"arn:{resources.partition}:sqs:{resources.region}:{resources.account}:{queue}",
                             function)

    def create_lambda_role(self, resources: Resources | None = None) -> str:
        """The role the Lambda consumer runs as (:func:`infra.policies.lambda_policy`); returns its ARN.

        Created with the other identities so that all of IAM is set up in one place;
        ``infra.lambda_deploy`` deploys the function with it.
        """
        function, _ = self.lambda_names()
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        try:
            arn = self.iam.create_role(RoleName=function, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            log.info("created role %s", function)
        except ClientError as exc:
            if _code(exc) != "EntityAlreadyExists":
                raise
            arn = self.iam.get_role(RoleName=function)["Role"]["Arn"]
        document = self.policy_document("lambda", resources)
        self.iam.put_role_policy(RoleName=function, PolicyName="consumer", PolicyDocument=json.dumps(document))
        return arn

    def _update_policy(self, arn: str, body: str) -> None:
        current = self.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = self.iam.get_policy_version(PolicyArn=arn, VersionId=current)["PolicyVersion"]["Document"]
        if isinstance(document, str):
            from urllib.parse import unquote

            document = json.loads(unquote(document))
        if document == json.loads(body):
            return
        versions = self.iam.list_policy_versions(PolicyArn=arn)["Versions"]
        for old in sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])[: max(0, len(versions) - 4)]:
            self.iam.delete_policy_version(PolicyArn=arn, VersionId=old["VersionId"])
        self.iam.create_policy_version(PolicyArn=arn, PolicyDocument=body, SetAsDefault=True)
        log.info("updated policy %s", arn)

    def create_users(self, credentials_file: Path) -> dict[str, str]:
        """An IAM user per component with its policy and an access key, stored as a profile.

        The keys go only to ``credentials_file`` (an AWS shared-credentials file, mode 0600),
        one profile per component (``<prefix>-producer`` ...), so each component runs with
        ``AWS_PROFILE`` through the standard chain. They are never printed or logged.
        Returns component -> profile name.
        """
        resources = self.resources()
        profiles = configparser.ConfigParser()
        if credentials_file.exists():
            profiles.read(credentials_file)
        names = {}
        for component in POLICIES:
            name = f"{self.settings.resource_prefix}-{component}"
            arn = f"arn:{resources.partition}:iam::{resources.account}:policy/{name}"
            try:
                self.iam.create_user(UserName=name)
                log.info("created user %s", name)
            except ClientError as exc:
                if _code(exc) != "EntityAlreadyExists":
                    raise
            self.iam.attach_user_policy(UserName=name, PolicyArn=arn)
            existing = [k["AccessKeyId"] for k in self.iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
            if not (profiles.has_section(name) and profiles[name].get("aws_access_key_id") in existing):
                for key_id in existing:  # a key we no longer hold the secret of is useless: rotate it
                    self.iam.delete_access_key(UserName=name, AccessKeyId=key_id)
                key = self.iam.create_access_key(UserName=name)["AccessKey"]
                profiles[name] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
                log.info("created an access key for %s (stored in profile %s)", name, name)
            names[component] = name
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            profiles.write(out)
        return names

    # -- delete -----------------------------------------------------------------------------

    def delete(self) -> None:
        s = self.settings
        try:
            self.kinesis.delete_stream(StreamName=s.stream_name, EnforceConsumerDeletion=True)
            self.kinesis.get_waiter("stream_not_exists").wait(StreamName=s.stream_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        for bucket in (s.bucket, s.mlflow_bucket):
            self._delete_bucket(bucket)
        try:
            self.dynamodb.delete_table(TableName=s.checkpoint_table)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        for call in () if not s.glue_catalog else (
                lambda: self.glue.delete_table(DatabaseName=s.glue_database, Name=s.glue_table),
                lambda: self.glue.delete_database(Name=s.glue_database)):
            try:
                call()
            except ClientError as exc:
                if _code(exc) != "EntityNotFoundException":
                    raise
        self._delete_iam()

    def _delete_bucket(self, name: str) -> None:
        try:
            while True:  # list everything first: deleting while paging skips objects
                objects = [
                    {"Key": o["Key"], "VersionId": o["VersionId"]}
                    for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=name)
                    for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if not objects:
                    break
                for i in range(0, len(objects), 1000):
                    self.s3.delete_objects(Bucket=name, Delete={"Objects": objects[i : i + 1000], "Quiet": True})
            self.s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            if _code(exc) != "NoSuchBucket":
                raise

    def _delete_iam(self) -> None:
        resources = self.resources()
        function, _ = self.lambda_names()
        for call in (lambda: self.iam.delete_role_policy(RoleName=function, PolicyName="consumer"),
                     lambda: self.iam.delete_role(RoleName=function)):
            try:
                call()
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
        for component in POLICIES:
            name = f"{self.settings.resource_prefix}-{component}"
            arn = f"arn:{resources.partition}:iam::{resources.account}:policy/{name}"
            try:
                for key in self.iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                    self.iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
            for call in (
                lambda: self.iam.detach_user_policy(UserName=name, PolicyArn=arn),
                lambda: self.iam.delete_user(UserName=name),
                lambda: self.iam.detach_role_policy(RoleName=name, PolicyArn=arn),
                lambda: self.iam.delete_role(RoleName=name),
            ):
                try:
                    call()
                except ClientError as exc:
                    if _code(exc) != "NoSuchEntity":
                        raise
            try:
                for v in self.iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                    if not v["IsDefaultVersion"]:
                        self.iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
                self.iam.delete_policy(PolicyArn=arn)
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
