"""boto3 clients configured the same way everywhere, and which of their errors are permanent.

Which AWS answers is decided by the standard chain alone: ``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_<SERVICE>`` for an emulator (LocalStack, moto), nothing for real AWS;
credentials come from the environment, a profile or a role, never from this code.
Retries use botocore's standard mode: bounded attempts with jittered exponential
backoff, and throttling errors (ProvisionedThroughputExceededException included) retried.

Errors that no retry can cure (access denied, credentials AWS does not accept, a stream,
table or bucket that does not exist) are raised as :class:`AwsPermanentError`, which is
still the ``ClientError`` subclass botocore would have raised (``except
s3.exceptions.NoSuchBucket`` and checks of the error code keep working), and also a
:class:`core.errors.PermanentError`, so the components stop on it instead of retrying.
"""

from __future__ import annotations

import functools
import re

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from adapters.iam_actions import iam_action, resource_arn, resource_params
from core.config import Settings
from core.errors import PermanentError, exit_on

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=30)

DENIED, CREDENTIALS, EXPIRED, MISSING = "denied", "credentials", "expired", "missing"

#: Error codes that no retry can cure, by what they mean.
PERMANENT_CODES = {
    "AccessDenied": DENIED,
    "AccessDeniedException": DENIED,
    "UnauthorizedOperation": DENIED,
    "UnrecognizedClientException": CREDENTIALS,
    "InvalidClientTokenId": CREDENTIALS,
    "InvalidAccessKeyId": CREDENTIALS,
    "SignatureDoesNotMatch": CREDENTIALS,
    "IncompleteSignature": CREDENTIALS,
    "ExpiredToken": EXPIRED,
    "ExpiredTokenException": EXPIRED,
    "ResourceNotFoundException": MISSING,
    "NoSuchBucket": MISSING,
}

#: The setting that names each kind of resource, for "what to do" in a message.
RESOURCE_SETTINGS = {"StreamName": "TRAFFIC_STREAM_NAME", "StreamARN": "TRAFFIC_STREAM_NAME",
                     "TableName": "TRAFFIC_CHECKPOINT_TABLE", "Bucket": "TRAFFIC_BUCKET or TRAFFIC_MLFLOW_BUCKET"}


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
    return [_classified(shared.client(service, config=merged), shared) for service in services]


def stream_reader(settings: Settings):
    """A Kinesis client for reading: timestamps are left as they came on the wire.

    Turning every record's ``ApproximateArrivalTimestamp`` into a ``datetime`` was 8 % of
    the consumer's time (measured with cProfile), and the consumer never reads it. The
    parser is a setting of the whole session, so this client has a session of its own
    (other clients, and botocore's own for credentials, parse timestamps as usual).
    """
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    own = boto3.session.Session(botocore_session=core, region_name=settings.region)
    return _classified(own.client("kinesis", config=RETRY_CONFIG), own)


def _as_sent(value):
    return value


# -- permanent errors -----------------------------------------------------------------------


class AwsPermanentError(ClientError, PermanentError):
    """A refused call that will be refused again: denied, bad credentials, a missing resource.

    Its message is one line naming the identity (asked of STS when the message is first
    formatted), the IAM action, the resource and what to do; never a secret.
    """

    def __init__(self, response: dict, operation_name: str, kind: str, service: str, params: dict,
                 region: str, session: boto3.session.Session) -> None:
        super().__init__(response, operation_name)
        self.kind, self.service, self.params, self.region = kind, service, params, region
        self.action = iam_action(service, operation_name)
        self._session = session
        self._line: str | None = None

    @property
    def code(self) -> str:
        return self.response.get("Error", {}).get("Code") or str(self.response["ResponseMetadata"]["HTTPStatusCode"])

    def __str__(self) -> str:
        if self._line is None:
            self._line = self._describe()
        return self._line

    def _describe(self) -> str:
        arn = identity_arn(self._session)
        who = arn or credentials_source(self._session)
        partition, account = (arn.split(":")[1], arn.split(":")[4]) if arn else ("aws", "<account>")
        resource = resource_arn(self.service, self.params, partition, self.region, account) or "*"
        if self.kind == DENIED:
            principal = arn.rsplit("/", 2)[-2 if ":assumed-role/" in arn else -1] if arn else who
            return (f"{who} is not allowed {self.action} on {resource} ({self.code}): the policy of {principal} "
                    f"lacks {self.action}; `python -m infra create` installs the project's policies (infra/policies.py)")
        if self.kind == MISSING:
            named = next((p for p in RESOURCE_SETTINGS if self.params.get(p)), None)
            what = f"{resource} does not exist" if named else f"the resource of {self.action} does not exist"
            setting = f" (or set {RESOURCE_SETTINGS[named]})" if named else ""
            return f"{what} ({self.code}, calling {self.action} as {who}): run `python -m infra create`{setting}"
        if self.kind == EXPIRED:
            return (f"the credentials of {who} have expired ({self.code}, calling {self.action} on {resource}): "
                    "renew them (a new session, `aws sso login`) and start again")
        return (f"AWS does not accept the credentials of {who} ({self.code}, calling {self.action} on {resource}): "
                "check AWS_PROFILE and the credentials file; `python -m infra create --users` writes fresh keys")


def identity_arn(session: boto3.session.Session) -> str | None:
    """Who these credentials are, as STS says (any identity may ask); None if STS refuses them too."""
    try:
        return session.client("sts", config=Config(retries={"max_attempts": 1})).get_caller_identity()["Arn"]
    except Exception:  # invalid keys, no network: the message falls back to where the keys came from
        return None


def credentials_source(session: boto3.session.Session) -> str:
    """Where the credentials came from, for a message: the profile, or the key id's last four characters."""
    if session.profile_name and session.profile_name != "default":
        return f"profile {session.profile_name}"
    try:
        credentials = session.get_credentials()
    except Exception:
        credentials = None
    if credentials is None:
        return "no credentials"
    return f"access key ...{credentials.access_key[-4:]} ({credentials.method})"


@functools.cache
def _permanent_class(error_class: type[ClientError]) -> type[AwsPermanentError]:
    """The permanent error that is also ``error_class`` (e.g. ``S3.Client.exceptions.NoSuchBucket``)."""
    if error_class is ClientError:
        return AwsPermanentError
    return type(f"Permanent{error_class.__name__}", (AwsPermanentError, error_class), {})


def _remember_params(params: dict, context: dict, **_) -> None:
    context["traffic_resource"] = resource_params(params)


def _raise_if_permanent(client, session, http_response, parsed, model, context, **_) -> None:
    if http_response.status_code < 300:
        return
    code = context.get("error_code_override") or parsed.get("Error", {}).get("Code")
    kind = PERMANENT_CODES.get(code or "")
    if kind is None and http_response.status_code == 403:
        # A 403 in a body botocore did not parse (moto's Kinesis answers JSON calls in XML):
        # its code says whether the keys or the policy are at fault.
        found = re.search(rb"<Code>(\w+)</Code>", http_response.content or b"")
        kind = PERMANENT_CODES.get(found.group(1).decode(), DENIED) if found else DENIED
        if found:
            parsed = {**parsed, "Error": {**parsed.get("Error", {}), "Code": found.group(1).decode()}}
    if kind is None:
        return
    error_class = _permanent_class(client.exceptions.from_code(code))
    raise error_class(parsed, model.name, kind, model.service_model.signing_name, context.get("traffic_resource", {}),
                      client.meta.region_name, session)


def _classified(aws_client, own_session: boto3.session.Session):
    events = aws_client.meta.events
    events.register("before-parameter-build", _remember_params)
    events.register("after-call", functools.partial(_raise_if_permanent, aws_client, own_session))
    return aws_client


def permanent(exc: BaseException) -> PermanentError | None:
    """``exc`` as a permanent error if it is one (credentials that cannot be found count), else None."""
    if isinstance(exc, PermanentError):
        return exc
    if isinstance(exc, NoCredentialsError):
        return PermanentError("no AWS credentials found (environment, AWS_PROFILE, credentials file, role): "
                              "set AWS_PROFILE, or write a profile per component with `python -m infra create --users`")
    if isinstance(exc, (ProfileNotFound, PartialCredentialsError, CredentialRetrievalError)):
        return PermanentError(f"the AWS credentials cannot be used: {exc}; check AWS_PROFILE and the credentials file")
    return None


def stops_on_permanent(component: str):
    """Decorate a ``main(argv) -> int``: a permanent error ends it with one line and exit code 2.

    No traceback: the line says who was refused what, and what to do.
    """
    def decorate(main):
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except Exception as exc:
                error = permanent(exc)
                if error is None:
                    raise
                return exit_on(component, error)
        return run
    return decorate
