"""docker-compose.yml is valid, every service runs code and reads variables that exist, and the
dashboards (Prometheus, Grafana) are wired to what the components serve."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config import ENVIRONMENT, METRICS_COMPONENTS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s}
#: Variables read by boto3/botocore or MLflow themselves (the standard chain), not by our config.
STANDARD = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
            "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"}
#: The component whose metrics each module's command serves (adapters.metrics.serve).
COMPONENT_OF_MODULE = {"producer": "producer", "consumer": "consumer", "training": "trainer"}
METRICS_SERVICES = {name: COMPONENT_OF_MODULE[s["command"][2]] for name, s in OURS.items()
                    if s["command"][:2] == ["python", "-m"] and s["command"][2] in COMPONENT_OF_MODULE}


def mounted(service: str, target: str) -> Path:
    """The repository path a service bind-mounts at ``target`` in its container."""
    for volume in SERVICES[service]["volumes"]:
        source, inside = volume.split(":")[:2]
        if inside == target:
            assert source.startswith("./"), volume
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def default(value: object) -> str:
    """A compose environment value with its ``${VARIABLE:-default}`` substituted by the default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


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
    assert mounted("localstack", "/etc/localstack/healthcheck.sh").is_file()


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "volumes" in s))
def test_every_file_mounted_from_the_repository_exists(name):
    for volume in SERVICES[name]["volumes"]:
        if volume.startswith("./"):
            assert (ROOT / volume.split(":")[0]).exists(), (name, volume)


def test_the_dashboard_services_are_pinned_and_published_on_localhost_only():
    for name, image, port in (("prometheus", "prom/prometheus", 9090), ("grafana", "grafana/grafana", 3000)):
        repository, tag = SERVICES[name]["image"].split(":")
        assert repository == image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), SERVICES[name]["image"]
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_prometheus_scrapes_exactly_the_services_that_serve_metrics_on_their_ports():
    assert set(METRICS_SERVICES.values()) == set(METRICS_COMPONENTS)
    config = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    scraped = {(job["job_name"], target) for job in config["scrape_configs"]
               for static in job["static_configs"] for target in static["targets"]}
    expected = set()
    for name, component in METRICS_SERVICES.items():
        environment = {**ENVIRONMENT, **{k: default(v) for k, v in SERVICES[name]["environment"].items()}}
        assert environment["TRAFFIC_METRICS_ADDRESS"] == "0.0.0.0", f"{name} serves metrics to its own container only"
        expected.add((component, f"{name}:{environment[f'TRAFFIC_{component.upper()}_METRICS_PORT']}"))
    api = {**ENVIRONMENT, **{k: default(v) for k, v in SERVICES["api"]["environment"].items()}}
    assert api["TRAFFIC_API_ADDRESS"] == "0.0.0.0" and SERVICES["api"]["ports"] == [f"127.0.0.1:{api['TRAFFIC_API_PORT']}:8000"]
    expected.add(("api", f"api:{api['TRAFFIC_API_PORT']}"))
    assert scraped == expected


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboard_uses_only_it():
    provisioning = mounted("grafana", "/etc/grafana/provisioning")
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    prometheus = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]  # $__rate_interval's base

    (provider,) = yaml.safe_load((provisioning / "dashboards" / "traffic-stream.yml").read_text())["providers"]
    folder = mounted("grafana", provider["options"]["path"])
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/") and (folder / home.rsplit("/", 1)[1]).is_file()
    expected = {"type": "prometheus", "uid": source["uid"]}
    for path in sorted(folder.glob("*.json")):
        panels = json.loads(path.read_text())["panels"]
        assert panels, path
        for panel in panels:
            assert panel["datasource"] == expected and panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == expected and target["expr"], (path.name, panel["title"])
