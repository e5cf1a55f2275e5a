"""boto3 clients configured the same way everywhere.

Which AWS answers is decided by the standard chain alone: ``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_<SERVICE>`` for an emulator (LocalStack, moto), nothing for real AWS;
credentials come from the environment, a profile or a role, never from this code.
Retries use botocore's standard mode: bounded attempts with jittered exponential
backoff, and throttling errors (ProvisionedThroughputExceededException included) retried.
"""

from __future__ import annotations

import boto3
import botocore.session
from botocore.config import Config

from core.config import Settings

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=30)


def session(settings: Settings) -> boto3.session.Session:
    return boto3.session.Session(region_name=settings.region)


def client(service: str, settings: Settings, config: Config | None = None):
    return clients(settings, service, config=config)[0]


def clients(settings: Settings, *services: str, config: Config | None = None) -> list:
    """Clients of ``services`` from one session.

    A session parses botocore's endpoint and service data for itself: a component's
    clients share one (Kinesis, S3 and DynamoDB clients: 19 MB from one session, 34 MB from
    three; docs/benchmarks.md). The consumer's stream reader has a session of its own, see
    :func:`stream_reader`.

    >>> s3, dynamodb = clients(Settings.from_env(), "s3", "dynamodb")
    >>> s3.meta.service_model.service_name, dynamodb.meta.service_model.service_name
    ('s3', 'dynamodb')
    """
    shared = session(settings)
    merged = RETRY_CONFIG.merge(config) if config else RETRY_CONFIG
    return [shared.client(service, config=merged) for service in services]


def stream_reader(settings: Settings):
    """A Kinesis client for reading: timestamps are left as they came on the wire.

    Turning every record's ``ApproximateArrivalTimestamp`` into a ``datetime`` was 8 % of
    the consumer's time (measured with cProfile), and the consumer never reads it. The
    parser is a setting of the whole session, so this client has a session of its own
    (other clients, and botocore's own for credentials, parse timestamps as usual).
    """
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    return boto3.session.Session(botocore_session=core, region_name=settings.region).client("kinesis", config=RETRY_CONFIG)


def _as_sent(value):
    return value
