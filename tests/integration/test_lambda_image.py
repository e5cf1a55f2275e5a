"""The Lambda image: its Dockerfile target, and the handler in a process that has only that
target's dependencies (lambda/Pipfile.lock, installed by ``make lambda-env``)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from adapters import aws
from adapters.result_store import ResultStore
from core import synthetic
from infra.provision import Provisioner
from tests.conftest import ROOT
from tests.integration import helpers
from tests.integration.test_lambda import events_from_stream

pytestmark = pytest.mark.integration

LAMBDA_PYTHON = ROOT / "lambda" / ".venv" / "bin" / "python"

HANDLE = """
import json, sys
import awslambdaric  # the image's entry point
from consumer.lambda_handler import handler
print("response", json.dumps(handler({"Records": json.load(open(sys.argv[1]))}, None)))
print("modules", json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def stage(name: str) -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.S | re.M)
    assert found, f"no {name} stage in the Dockerfile"
    return found.group(1)


def test_the_lambda_target_installs_its_own_lock_and_starts_the_runtime_interface_client():
    lam = stage("lambda")
    assert "COPY lambda/Pipfile lambda/Pipfile.lock ./" in lam and "pipenv install --system --deploy" in lam
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in lam
    assert 'CMD ["consumer.lambda_handler.handler"]' in lam
    for package in ("core", "adapters", "consumer"):
        assert f"COPY {package} ./{package}" in lam
    lock = json.loads((ROOT / "lambda" / "Pipfile.lock").read_text())["default"]
    assert "awslambdaric" in lock and "mlflow-skinny" in lock
    assert not {"mlflow", "shap", "evidently", "moto", "prometheus-client"} & set(lock)  # the services' only
    project = json.loads((ROOT / "Pipfile.lock").read_text())["default"]
    # The same versions as the project's own, where both have a package.
    assert {k: v["version"] for k, v in lock.items() if k in project} == {
        k: project[k]["version"] for k in lock if k in project}, "lambda/Pipfile.lock and Pipfile.lock disagree"
    assert "target: app" in (ROOT / "docker-compose.yml").read_text()  # compose builds the services' stage


def test_the_handler_handles_an_event_with_only_the_lambda_images_dependencies(settings, synthetic_records,
                                                                                 monkeypatch, tmp_path):
    subprocess.run(["make", "lambda-env"], cwd=ROOT, check=True, capture_output=True)
    settings = settings.replace(stream_shards=1)
    monkeypatch.setenv("TRAFFIC_STREAM_SHARDS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the online model alone
    Provisioner(settings).create(with_iam=False)
    records = synthetic.many_stations(synthetic_records[:60], 2)
    helpers.produce(settings, records)
    events = tmp_path / "events.json"
    events.write_text(json.dumps(events_from_stream(settings)))

    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run([str(LAMBDA_PYTHON), "-c", HANDLE, str(events)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**environment, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("response ", "modules ")))
    response, modules = json.loads(printed["response"]), json.loads(printed["modules"])
    assert response == {"batchItemFailures": []}
    assert {"awslambdaric", "consumer", "river", "sklearn"} <= set(modules)
    s3 = aws.client("s3", settings)
    rows = ResultStore(s3, settings.bucket).read_predictions()
    assert len(rows) == len(records) and rows["event_id"].is_unique
