"""docker-compose.yml is valid, and every service runs code and reads variables that exist."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s}
#: Variables read by boto3/botocore or MLflow themselves (the standard chain), not by our config.
STANDARD = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
            "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"}


def test_the_topology_is_complete():
    assert {"localstack", "postgres", "provision", "mlflow", "trainer", "consumer", "producer"} <= set(SERVICES)
    tag = SERVICES["localstack"]["image"].split(":")[1]
    assert tag != "latest" and re.fullmatch(r"\d+\.\d+\.\d+", tag)  # pinned; see README for why this tag
    services = SERVICES["localstack"]["environment"]["SERVICES"].split(",")
    assert {"kinesis", "s3", "iam", "sts", "dynamodb"} <= set(services)
    mlflow = " ".join(SERVICES["mlflow"]["command"])
    assert "postgresql+psycopg2://" in mlflow and "s3://" in mlflow
    assert SERVICES["producer"]["environment"]["TRAFFIC_REPLAY_SPEED"].endswith(":-1}")  # real time by default
    assert {"postgres-data", "localstack-data"} <= set(COMPOSE["volumes"])


def test_dependencies_name_services_with_the_health_they_wait_for():
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency
            if rule["condition"] == "service_completed_successfully":
                assert SERVICES[dependency].get("restart") == "no", dependency


@pytest.mark.parametrize("name", sorted(n for n, s in OURS.items() if s["command"][:2] == ["python", "-m"]))
def test_python_commands_exist_and_parse(name):
    command = OURS[name]["command"]
    module = importlib.import_module(f"{command[2]}.__main__")
    module.build_parser().parse_args(command[3:])  # exits (fails the test) on an unknown command or option
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"COPY {command[2]} ./{command[2]}" in dockerfile


def test_the_mlflow_server_runs_as_the_embedded_one_does():
    """docker-compose's server and infra.tracking_server's run with the same settings of MLflow's own."""
    from infra.tracking_server import SERVER_ENVIRONMENT

    environment = SERVICES["mlflow"]["environment"]
    assert {name: str(environment.get(name)).lower() for name in SERVER_ENVIRONMENT} == SERVER_ENVIRONMENT


def test_the_mlflow_server_accepts_every_option():
    command = SERVICES["mlflow"]["command"]
    help_text = subprocess.run([sys.executable, "-m", "mlflow", "server", "--help"], capture_output=True, text=True,
                               check=True).stdout
    for option in (c for c in command if c.startswith("--")):
        assert option in help_text, option


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_variable_set_is_one_the_code_reads(name):
    for variable in OURS[name].get("environment", {}):
        assert variable in ENVIRONMENT or variable in STANDARD, f"{name} sets {variable}, which nothing reads"


def test_the_localstack_healthcheck_script_is_mounted():
    volumes = SERVICES["localstack"]["volumes"]
    script = next(v.split(":")[0] for v in volumes if "healthcheck" in v)
    assert (ROOT / script).is_file()
