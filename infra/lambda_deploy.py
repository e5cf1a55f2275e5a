"""Deploy the serverless path: the consumer as a Lambda function behind a Kinesis mapping.

``python -m infra.lambda_deploy --image-uri <ECR image>`` (real AWS: the image is the
Dockerfile's ``lambda`` target, ``docker build --target lambda``, with the Lambda runtime
interface client as entry point, since the dependencies are too large for a zip) or ``--zip`` (the project's code only: for a
runtime that has the dependencies in a layer, and for the emulator). Idempotent: a second
run updates what exists.

The mapping reports partial batch failures (``ReportBatchItemFailures``), bisects a
failing batch, retries a bounded number of times and sends what still fails to an SQS
queue (the on-failure destination), so no record is dropped silently.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import zipfile
from pathlib import Path

from botocore.exceptions import ClientError

from adapters import aws
from core.config import Settings
from infra.provision import Provisioner

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "adapters", "consumer")
HANDLER = "consumer.lambda_handler.handler"


def code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*.py")):
                archive.write(path, path.relative_to(ROOT).as_posix())
    return buffer.getvalue()


class LambdaDeployer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.provisioner = Provisioner(settings)
        self.iam, self.sqs, self.lam, self.kinesis = aws.clients(settings, "iam", "sqs", "lambda", "kinesis")
        self.name, self.queue = self.provisioner.lambda_names()

    def deploy(self, code: dict, memory_mb: int = 1024, timeout_s: int = 120, batch_size: int = 500) -> dict:
        resources = self.provisioner.resources()
        queue_url = self.sqs.create_queue(QueueName=self.queue)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        role_arn = self.provisioner.create_lambda_role()
        environment = {"Variables": {k: v for k, v in self._environment().items() if v}}
        try:
            kind = {"PackageType": "Image"} if "ImageUri" in code else {"Runtime": "python3.11", "Handler": HANDLER}
            function_arn = self.lam.create_function(
                FunctionName=self.name, Role=role_arn, Code=code, Timeout=timeout_s, MemorySize=memory_mb,
                Environment=environment, Description="traffic-stream consumer (Kinesis event source mapping)", **kind,
            )["FunctionArn"]
            log.info("created function %s", self.name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceConflictException":
                raise
            self.lam.update_function_code(FunctionName=self.name, **code)
            function_arn = self.lam.get_function(FunctionName=self.name)["Configuration"]["FunctionArn"]
        mapping = {
            "BatchSize": batch_size,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 10,
            "DestinationConfig": {"OnFailure": {"Destination": queue_arn}},
            # One invocation at a time per shard keeps each station's records in order.
            "ParallelizationFactor": 1,
        }
        existing = self.lam.list_event_source_mappings(EventSourceArn=resources.stream_arn, FunctionName=self.name)
        if existing["EventSourceMappings"]:
            uuid = existing["EventSourceMappings"][0]["UUID"]
            self.lam.update_event_source_mapping(UUID=uuid, FunctionName=self.name, **mapping)
        else:
            uuid = self.lam.create_event_source_mapping(
                EventSourceArn=resources.stream_arn, FunctionName=self.name, StartingPosition="TRIM_HORIZON", **mapping
            )["UUID"]
            log.info("created the event source mapping %s", uuid)
        return {"function": function_arn, "role": role_arn, "mapping": uuid, "on_failure": queue_arn}

    def _environment(self) -> dict[str, str]:
        s = self.settings
        return {"TRAFFIC_STREAM_NAME": s.stream_name, "TRAFFIC_BUCKET": s.bucket,
                "TRAFFIC_CHECKPOINT_TABLE": s.checkpoint_table, "TRAFFIC_APP_NAME": f"{s.app_name}-lambda",
                "TRAFFIC_MODEL_NAME": s.model_name, "MLFLOW_TRACKING_URI": s.tracking_uri
                if not s.tracking_uri.startswith("sqlite") else ""}


@aws.stops_on_permanent("lambda_deploy")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lambda_deploy", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image-uri", help="container image with the project and its dependencies (real AWS)")
    source.add_argument("--zip", action="store_true", help="the project's code as a zip (dependencies from a layer)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = {"ImageUri": args.image_uri} if args.image_uri else {"ZipFile": code_zip()}
    print(json.dumps(LambdaDeployer(Settings.from_env()).deploy(code), indent=2))
    return 0



if __name__ == "__main__":
    sys.exit(main())
