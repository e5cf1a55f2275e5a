"""Least privilege, proven by the real components: each runs as its own IAM user and does its whole job.

On a moto server that enforces IAM, ``python -m infra create --users`` writes a profile
per component; then the producer, two consumers (leases), ``training train`` and
``retrain``, ``monitor reconcile``, ``compare`` and ``drift`` and the MLflow server (its artifact
store) run as processes with ``AWS_PROFILE=<prefix>-<component>`` and no other keys, and
the Lambda handler runs in this process with the keys of the Lambda role. Every AWS call
each makes is recorded (:mod:`infra.call_log`) and the IAM actions used must equal the
actions its policy allows, and each call's resource must be one a statement allowing
that action names: the ARN scoping that moto itself checks for S3 only.

The same stack then shows that a permanent error (denied, invalid keys, a missing stream,
table or bucket) ends each component within 30 s with exit code 2 and one line.
"""

from __future__ import annotations

import base64
import configparser
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from adapters.iam_actions import resource_arn
from consumer import checkpoint_table, lambda_handler
from core import synthetic
from infra import call_log, emulator, server_process, tracking_server
from infra.policies import LAMBDA_SERVICE_SIDS, POLICIES, Resources, lambda_policy
from monitor.stream_contents import shard_records
from tests.conftest import ROOT, free_port
from tests.integration import helpers

pytestmark = pytest.mark.integration

ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
TRAIN_END, REPLAY_START, REPLAY_END = "2015-10-01", "2015-10-01", "2015-10-16"
HOURS = 16 * 24


class Stack:
    """An IAM-enforcing moto server, the project's IAM users, and an MLflow server run as its own user."""

    def __init__(self, root: Path, synthetic_csv: Path) -> None:
        self.root = root
        suffix = uuid.uuid4().hex[:8]
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.processes: list[subprocess.Popen] = []
        # moto enforces IAM once this many actions have been made without it (the bootstrap's).
        self.moto = emulator.start(port, root / "moto-iam.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
        self.credentials = root / "credentials"
        self.calls = root / "calls"
        self.calls.mkdir()
        self.prefix = f"ts-{suffix}"
        self.common = {
            "TRAFFIC_HOME": str(root / "home"), "TRAFFIC_DATA": str(synthetic_csv),
            "TRAFFIC_STREAM_NAME": f"events-{suffix}", "TRAFFIC_STREAM_SHARDS": "2",
            "TRAFFIC_BUCKET": f"predictions-{suffix}", "TRAFFIC_MLFLOW_BUCKET": f"mlflow-{suffix}",
            "TRAFFIC_CHECKPOINT_TABLE": f"checkpoints-{suffix}", "TRAFFIC_RESOURCE_PREFIX": self.prefix,
            "TRAFFIC_GLUE_DATABASE": f"traffic_{suffix}",
            "TRAFFIC_CHAMPION_REFRESH_SECONDS": "0.5", "TRAFFIC_POLL_SECONDS": "0.05", "TRAFFIC_LEASE_SECONDS": "3",
            "TRAFFIC_BATCH_TREES": "100",
            "TRAFFIC_PRODUCER_METRICS_PORT": "0", "TRAFFIC_CONSUMER_METRICS_PORT": "0", "TRAFFIC_TRAINER_METRICS_PORT": "0",
            # Several batches a shard, so the consumer also replaces (and deletes) committed states.
            "TRAFFIC_BATCH_SIZE": "50",
            # What is checked here is who may call what, not how good a retrained model is.
            "TRAFFIC_PROMOTION_TOLERANCE": "1.0",
            # The retrainer reads the consumers' drift events (drift/) to bring the retrain forward.
            "TRAFFIC_DRIFT_RETRAIN": "1",
            # An MLflow 3 server on S3 offers presigned URLs for downloads; moto's IAM check reads
            # only the Authorization header and fails on them (a KeyError, answered with a 500).
            # Downloads through the server exercise the same identities: the server's reads.
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        }
        self.admin_keys = self._bootstrap_admin()

    # -- identities -------------------------------------------------------------------------

    def _bootstrap_admin(self) -> dict[str, str]:
        # The four unauthenticated actions moto allows: an administrator for the provisioning.
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="admin")
        arn = iam.create_policy(PolicyName="admin", PolicyDocument=ADMIN_POLICY)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="admin", PolicyArn=arn)
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def env(self, profile: str | None = None, keys: dict[str, str] | None = None, call_log_name: str | None = None,
            **overrides: str) -> dict[str, str]:
        """A component's environment: this stack's settings, one identity, and nothing else of AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "TRAFFIC_", "BOTOCORE_"))}
        env.update(self.common, PYTHONPATH=str(ROOT), AWS_ENDPOINT_URL=self.endpoint, AWS_REGION="us-east-1",
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=str(self.credentials))
        if getattr(self, "tracking_uri", None):
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        if profile is not None:
            env["AWS_PROFILE"] = profile
        env.update(keys or {})
        if call_log_name is not None:
            env.update(BOTOCORE_EXPERIMENTAL__PLUGINS="calllog=infra.call_log",
                       TRAFFIC_AWS_CALL_LOG=str(self.calls / f"{call_log_name}.jsonl"))
        env.update(overrides)
        return env

    def profile(self, component: str) -> str:
        return f"{self.prefix}-{component}"

    def admin(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.admin_keys["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.admin_keys["AWS_SECRET_ACCESS_KEY"])

    def keys(self, component: str) -> dict[str, str]:
        profiles = configparser.ConfigParser()
        profiles.read(self.credentials)
        section = profiles[self.profile(component)]
        return {"aws_access_key_id": section["aws_access_key_id"], "aws_secret_access_key": section["aws_secret_access_key"]}

    def secrets(self) -> list[str]:
        profiles = configparser.ConfigParser()
        profiles.read(self.credentials)
        return [profiles[s]["aws_secret_access_key"] for s in profiles.sections()] + [
            self.admin_keys["AWS_SECRET_ACCESS_KEY"]]

    def resources(self) -> Resources:
        c = self.common
        return Resources("aws", "us-east-1", "123456789012", c["TRAFFIC_STREAM_NAME"], c["TRAFFIC_BUCKET"],
                         c["TRAFFIC_MLFLOW_BUCKET"], c["TRAFFIC_CHECKPOINT_TABLE"], c["TRAFFIC_GLUE_DATABASE"])

    def mirror(self, document: dict, name: str, user: str | None = None, role: str | None = None) -> None:
        """moto matches Kinesis, DynamoDB and Glue permissions on the action alone, so it denies a
        resource-scoped Allow: mirror those statements unscoped, as moto understands them.
        The actions stay exactly the component's; the scoping is checked on the recorded calls."""
        statements = [{**st, "Resource": "*"} for st in document["Statement"]
                      if any(a.startswith(("kinesis:", "dynamodb:", "glue:")) for a in st["Action"])]
        if not statements:
            return
        iam = self.admin("iam")
        body = json.dumps({"Version": "2012-10-17", "Statement": statements})
        arn = iam.create_policy(PolicyName=f"moto-mirror-{name}", PolicyDocument=body)["Policy"]["Arn"]
        if user:
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        if role:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)

    # -- processes --------------------------------------------------------------------------

    def run(self, args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                                   stdout=open(self.root / f"{log_name}.log", "wb"), stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_mlflow(self) -> None:
        """The MLflow server as compose runs it (artifacts in S3, proxied), as the mlflow user."""
        env = self.env(self.profile("mlflow"), call_log_name="mlflow")
        with pytest.MonkeyPatch.context() as patch:  # the server's environment is this one plus env: no other keys
            for name in [n for n in os.environ if n.startswith(("AWS_", "MLFLOW_", "TRAFFIC_", "BOTOCORE_"))]:
                patch.delenv(name)
            self.mlflow, self.tracking_uri = tracking_server.start(
                f"sqlite:///{self.root / 'mlflow.db'}", f"s3://{self.common['TRAFFIC_MLFLOW_BUCKET']}/artifacts",
                free_port(), self.root / "mlflow-server.log", env)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        if getattr(self, "mlflow", None) is not None:
            tracking_server.stop(self.mlflow)
        server_process.stop(self.moto)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # The conftest's synthetic hours with a lane closure in the replay, so the consumers write
    # drift events and the retrainer reads them, each as its own user.
    root = tmp_path_factory.mktemp("least-privilege")
    data = synthetic.write_csv(root / "closure.csv.gz", start="2015-01-01", hours=24 * 425, seed=7,
                               gap=(24 * 200, 24 * 5), level_shift=("2015-10-07 08:00", 0.6))
    s = Stack(root, data)
    try:
        done = s.run(["infra", "create", "--users", "--credentials-file", str(s.credentials)], s.env(keys=s.admin_keys))
        assert done.returncode == 0, done.stderr
        assert oct(s.credentials.stat().st_mode & 0o777) == "0o600"
        again = s.run(["infra", "create", "--users", "--credentials-file", str(s.credentials)], s.env(keys=s.admin_keys))
        assert again.returncode == 0 and json.loads(again.stdout)["profiles"] == json.loads(done.stdout)["profiles"]
        assert not any(secret in done.stdout + done.stderr for secret in s.secrets())  # never printed or logged
        for component, build in POLICIES.items():
            s.mirror(build(s.resources()), f"{s.prefix}-{component}", user=s.profile(component))
        s.start_mlflow()
        trained = s.run(["training", "train", "--train-end", TRAIN_END], s.env(s.profile("trainer"), call_log_name="trainer"))
        assert trained.returncode == 0, trained.stderr[-3000:]
        yield s
    finally:
        s.close()


def test_every_component_does_its_whole_job_as_its_own_user_and_uses_exactly_its_policy(stack):
    s = stack
    consumer_env = s.env(s.profile("consumer"), call_log_name="consumer")
    workers = [s.start(["consumer", "--worker-id", f"worker-{i}"], consumer_env, f"consumer-{i}") for i in (1, 2)]
    table, app = s.common["TRAFFIC_CHECKPOINT_TABLE"], "traffic-stream-consumer"

    def owners() -> set[str | None]:
        items = s.admin("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
        shards = ((checkpoint_table.shard_of(app, i), i) for i in items)
        return {checkpoint_table.lease(shard, i).owner for shard, i in shards if shard is not None}

    helpers.wait_until(lambda: owners() == {"worker-1", "worker-2"}, 90, 0.5, "both workers to hold a shard")

    # A record no schema accepts, put as the producer: it must end as a dead letter, not stop anything.
    kinesis = boto3.client("kinesis", endpoint_url=s.endpoint, region_name="us-east-1", **s.keys("producer"))
    kinesis.put_records(StreamName=s.common["TRAFFIC_STREAM_NAME"], Records=[{"Data": b"{not json", "PartitionKey": "301"}])

    produced = s.run(["producer", "--start", REPLAY_START, "--end", REPLAY_END, "--speed", "max", "--no-progress"],
                     s.env(s.profile("producer"), call_log_name="producer"))
    assert produced.returncode == 0, produced.stderr[-3000:]
    put = int(next(line for line in produced.stdout.splitlines() if line.startswith("records put")).split()[-1])

    monitor_env = s.env(s.profile("monitor"), call_log_name="monitor")
    reconciled = s.run(["monitor", "reconcile", "--start", REPLAY_START, "--end", REPLAY_END, "--wait", "180"], monitor_env)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr[-3000:]
    lines = dict(line.rsplit(None, 1) for line in reconciled.stdout.splitlines() if line.strip())
    assert int(lines["produced"].replace(",", "")) == put == int(lines["predicted"].replace(",", "")) + int(
        lines["dead-lettered"].replace(",", ""))
    assert put >= HOURS - 24  # a few hundred hours (the synthetic source skips some, as the real one does)
    assert lines["missing"] == "0" and lines["duplicated"] == "0"

    drift_events = s.admin("s3").list_objects_v2(Bucket=s.common["TRAFFIC_BUCKET"], Prefix="drift/")
    assert drift_events["KeyCount"] > 0  # written by the consumers, as the consumer user
    # The replayed month compacted as the trainer (the retrainer runs the same job), the grace
    # period 0 so that what it replaced goes at once: the readers below read the compacted month.
    compacted = s.run(["monitor", "compact", "--month", "2015-10"],
                      s.env(s.profile("trainer"), call_log_name="trainer", TRAFFIC_COMPACT_GRACE_SECONDS="0"))
    assert compacted.returncode == 0, compacted.stderr[-3000:]
    assert "2015-10:" in compacted.stdout and "compacted 1 month(s)" in compacted.stdout, compacted.stdout
    retrained = s.run(["training", "retrain"], s.env(s.profile("trainer"), call_log_name="trainer"))
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert "promoted=True" in retrained.stdout, retrained.stdout

    compared = s.run(["monitor", "compare"], monitor_env)
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert "batch" in compared.stdout and "online" in compared.stdout
    drifted = s.run(["monitor", "drift"], monitor_env)  # reads the history too
    assert drifted.returncode == 0, drifted.stderr[-3000:]
    assert "drifted columns:" in drifted.stdout

    # The prediction API, as its own user: reads the committed state the workers left.
    api = s.start(["serve"], s.env(s.profile("api"), call_log_name="api", TRAFFIC_API_PORT="0"), "api")
    port = helpers.wait_until(lambda: re.search(r"on http://[\d.]+:(\d+)", (s.root / "api.log").read_text())
                              or api.poll() is not None, 120, 0.2, "the API to listen")
    assert api.poll() is None, (s.root / "api.log").read_text()[-3000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/stations/301/forecast", timeout=60) as response:
        assert json.loads(response.read())["batch_model_version"]
    api.send_signal(signal.SIGTERM)
    api.wait(30)

    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for i, worker in enumerate(workers, 1):
        assert worker.wait(60) == 0, (s.root / f"consumer-{i}.log").read_text()[-3000:]
    logs = [(s.root / f"consumer-{i}.log").read_text() for i in (1, 2)]
    assert all("stopped:" in log for log in logs)
    assert "dead letter" in "".join(logs)

    lambda_document = run_lambda_handler(s)

    resources = s.resources()
    policies = {component: build(resources) for component, build in POLICIES.items()}
    policies["lambda"] = lambda_document
    assert lambda_document == lambda_policy(resources, f"arn:aws:sqs:us-east-1:123456789012:{s.prefix}-consumer-lambda"
                                            "-failures", f"{s.prefix}-consumer-lambda")
    tables = []
    for component, document in policies.items():
        # The operator's command: the log held against the policy `infra create` installs.
        audited = s.run(["infra", "audit", "--call-log", str(s.calls / f"{component}.jsonl"), "--component", component],
                        s.env(keys=s.admin_keys))
        tables.append(f"{component}\n{audited.stdout}")
        assert audited.returncode == 0, f"{component}: used and allowed actions differ\n{audited.stdout}{audited.stderr}"
        entries = call_log.read(s.calls / f"{component}.jsonl")
        used = call_log.audit(entries, document, LAMBDA_SERVICE_SIDS if component == "lambda" else ())
        assert used.exact and used.used, used.table()
        outside = [e for e in entries if not covered(document, e, resources)]
        assert outside == [], f"{component} called outside its policy's resources: {outside[:5]}"
    print("\n" + "\n".join(tables))
    output = "".join(p.read_text() for p in s.root.glob("*.log")) + produced.stdout + reconciled.stdout
    assert not any(secret in output for secret in s.secrets())


def run_lambda_handler(s: Stack) -> dict:
    """The Lambda handler, here, under the keys Lambda gives the function: those of its role.
    Returns the role's policy, as `infra create` made it."""
    # `infra create` made the role with the other identities (moto cannot deploy the function
    # under IAM enforcement: it rejects the signature of every Lambda GET).
    role_name = f"{s.prefix}-consumer-lambda"
    role = s.admin("iam").get_role(RoleName=role_name)["Role"]["Arn"]
    document = s.admin("iam").get_role_policy(RoleName=role_name, PolicyName="consumer")["PolicyDocument"]
    s.mirror(document, f"{role_name}-mirror", role=role_name)
    # Only Lambda may assume the role. To hold its keys here the test trusts the account
    # administrator (the permissions are untouched): what a developer does to run a handler locally.
    s.admin("iam").update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"}}]}))
    keys = s.admin("sts").assume_role(RoleArn=role, RoleSessionName="lambda")["Credentials"]
    events = [
        {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                     "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode(),
                     "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
         "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventName": "aws:kinesis:record",
         "eventID": f"{shard}:{r['SequenceNumber']}", "awsRegion": "us-east-1", "invokeIdentityArn": role,
         "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{s.common['TRAFFIC_STREAM_NAME']}"}
        for shard, records in shard_records(s.admin("kinesis"), s.common["TRAFFIC_STREAM_NAME"]).items()
        for r in records[:60]
    ]
    env = s.env(keys={"AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
                      "AWS_SESSION_TOKEN": keys["SessionToken"]}, call_log_name="lambda",
                TRAFFIC_APP_NAME="traffic-stream-consumer-lambda")
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        lambda_handler._processor = None
        first = lambda_handler.handler({"Records": events[: len(events) // 2]}, None)
        second = lambda_handler.handler({"Records": events}, None)  # a redelivery and more: states replaced
    finally:
        os.environ.clear()
        os.environ.update(saved)
        lambda_handler._processor = None
    assert first["batchItemFailures"] == [] and second["batchItemFailures"] == []
    return document


def covered(document: dict, entry: dict, r: Resources) -> bool:
    """Whether a statement allowing the call's action names its resource (and prefix, for a listing)."""
    arn = resource_arn(entry["action"].split(":", 1)[0], entry["resource"], r.partition, entry["region"], r.account)
    for st in document["Statement"]:
        if entry["action"] not in st["Action"]:
            continue
        if arn is None:  # GetRecords names a shard iterator, issued for the stream GetShardIterator named
            return True
        if not any(fnmatch.fnmatchcase(arn, pattern) for pattern in st["Resource"]):
            continue
        prefixes = st.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if prefixes is None or any(fnmatch.fnmatchcase(entry["resource"].get("Prefix", ""), p) for p in prefixes):
            return True
    return False


# -- permanent errors --------------------------------------------------------------------------


def ends_with_one_line(s: Stack, args: list[str], env: dict[str, str], component: str, *expected: str) -> str:
    done = s.run(args, env, timeout=30)  # a permanent error ends the process within 30 s
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{component}: "), last
    for text in expected:
        assert text in last, (text, last)
    assert not any(secret in done.stdout + done.stderr for secret in s.secrets())
    return last


def test_permanent_errors_end_each_component_with_one_line(stack, capsys):
    s = stack
    c = s.common
    stream, table, bucket = c["TRAFFIC_STREAM_NAME"], c["TRAFFIC_CHECKPOINT_TABLE"], c["TRAFFIC_BUCKET"]
    replay = ["producer", "--start", REPLAY_START, "--end", "2015-10-01", "--speed", "max", "--no-progress"]
    components = {
        "producer": replay,
        "consumer": ["consumer", "--no-tracking"],
        "training": ["training", "retrain"],
        "monitor": ["monitor", "reconcile", "--start", REPLAY_START, "--end", REPLAY_END],
    }
    bogus = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE12", "AWS_SECRET_ACCESS_KEY": "not-a-secret-" + "x" * 27}
    lines = []
    # Denied: each component run as another's user. The line names the identity and the action.
    denied = {"producer": ("monitor", "kinesis:PutRecords"), "consumer": ("producer", "kinesis:ListShards"),
              "training": ("producer", "s3:ListBucket"), "monitor": ("producer", "s3:ListBucket")}
    for component, (other, action) in denied.items():
        lines.append(ends_with_one_line(s, components[component], s.env(s.profile(other)), component,
                                        s.profile(other), action, "is not allowed", "infra create"))
    # Keys AWS does not know.
    for component, args in components.items():
        lines.append(ends_with_one_line(s, args, s.env(keys=bogus), component, "does not accept the credentials"))
    # A stream, table or bucket that does not exist (as the administrator, whom IAM lets through).
    admin = s.env(keys=s.admin_keys)
    missing = [
        ("producer", {"TRAFFIC_STREAM_NAME": "no-such-stream"}, "stream/no-such-stream"),
        ("consumer", {"TRAFFIC_STREAM_NAME": "no-such-stream"}, "stream/no-such-stream"),
        ("consumer", {"TRAFFIC_CHECKPOINT_TABLE": "no-such-table"}, "table/no-such-table"),
        ("training", {"TRAFFIC_BUCKET": "no-such-bucket"}, "arn:aws:s3:::no-such-bucket"),
        ("monitor", {"TRAFFIC_BUCKET": "no-such-bucket"}, "arn:aws:s3:::no-such-bucket"),
    ]
    for component, override, resource in missing:
        lines.append(ends_with_one_line(s, components[component], {**admin, **override}, component,
                                        resource, "does not exist", "python -m infra create"))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # The real resources were left as they were.
    assert s.admin("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
    assert s.admin("dynamodb").describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    s.admin("s3").head_bucket(Bucket=bucket)
