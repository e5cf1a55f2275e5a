"""Which AWS errors are permanent, checked on botocore's own stubbed responses (no server)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from adapters import aws
from core.config import Settings
from core.errors import PermanentError

SETTINGS = Settings.from_env({"AWS_DEFAULT_REGION": "us-east-1"})


def refused(service: str, operation: str, code: str, status: int = 400, client=None, **params):
    client = client or aws.client(service, SETTINGS)
    with Stubber(client) as stub:
        stub.add_client_error(operation, service_error_code=code, http_status_code=status)
        with pytest.raises(ClientError) as raised:
            getattr(client, operation)(**params)
    return raised.value


@pytest.mark.parametrize("code, kind", [("ExpiredTokenException", aws.EXPIRED), ("AccessDeniedException", aws.DENIED),
                                        ("UnrecognizedClientException", aws.CREDENTIALS),
                                        ("ResourceNotFoundException", aws.MISSING)])
def test_refusals_no_retry_can_cure_are_permanent_and_still_the_error_botocore_raises(code, kind):
    error = refused("kinesis", "put_records", code, StreamName="s", Records=[{"Data": b"x", "PartitionKey": "1"}])
    assert isinstance(error, aws.AwsPermanentError) and isinstance(error, PermanentError)
    assert error.kind == kind and error.action == "kinesis:PutRecords" and error.response["Error"]["Code"] == code
    assert error.params == {"StreamName": "s"}  # the resource's name only: never the records


def test_a_missing_bucket_is_still_s3s_no_such_bucket():
    s3 = aws.client("s3", SETTINGS)
    error = refused("s3", "list_objects_v2", "NoSuchBucket", 404, client=s3, Bucket="b", Prefix="predictions/")
    assert isinstance(error, s3.exceptions.NoSuchBucket) and error.action == "s3:ListBucket"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalFailure",
                                  "ExpiredIteratorException", "ConditionalCheckFailedException"])
def test_throttling_server_errors_and_expected_conditions_are_not_permanent(code):
    error = refused("kinesis", "put_records", code, StreamName="s", Records=[{"Data": b"x", "PartitionKey": "1"}])
    assert not isinstance(error, PermanentError) and aws.permanent(error) is None


def test_credentials_that_cannot_be_found_are_permanent():
    assert "AWS_PROFILE" in str(aws.permanent(NoCredentialsError()))
    assert aws.permanent(ValueError("x")) is None


def test_a_component_ends_on_a_permanent_error_with_its_line_and_code_2(capsys):
    @aws.stops_on_permanent("producer")
    def main(argv=None):
        raise PermanentError("the stream s does not exist: run `python -m infra create`")

    assert main([]) == 2
    assert capsys.readouterr().err == "producer: the stream s does not exist: run `python -m infra create`\n"
