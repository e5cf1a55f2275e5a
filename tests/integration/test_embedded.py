"""The embedded stack as the Makefile runs it: ``python -m infra.emulator up`` / ``down``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime

import boto3
import pytest

from adapters import model_registry
from core import batch_model, features
from core.config import Settings
from infra import tracking_server
from infra.server_process import alive, wait_for_port
from infra.provision import Provisioner
from tests.conftest import ROOT, free_port
from tests.integration import helpers

pytestmark = pytest.mark.integration


def _emulator(action: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "infra.emulator", action, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_up_serves_aws_and_the_registry_over_http_and_down_stops_both(tmp_path, monkeypatch, synthetic_records):
    home = tmp_path / "home"
    port, tracking_port = free_port(), free_port()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    env = {**os.environ, "TRAFFIC_HOME": str(home), "PYTHONPATH": str(ROOT)}
    ports = ("--port", str(port), "--tracking-port", str(tracking_port))
    _emulator("up", env, *ports)
    pids = [int((home / name).read_text()) for name in ("emulator.pid", "tracking.pid")]
    try:
        assert "already running" in _emulator("up", env, *ports)  # a second `up` starts nothing
        assert [int((home / name).read_text()) for name in ("emulator.pid", "tracking.pid")] == pids
        # The server and its one HTTP worker, without MLflow's GenAI job queue (10 processes with it).
        server = subprocess.run(["ps", "-o", "args=", "--sid", str(pids[1])], capture_output=True, text=True).stdout
        assert len(server.splitlines()) == 2 and "huey" not in server and "_job_runner" not in server, server

        # What `make demo` sets: every component reaches MLflow over HTTP, AWS on moto.
        embedded = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "embedded",
                    "AWS_SECRET_ACCESS_KEY": "embedded", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                    "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{tracking_port}", "TRAFFIC_HOME": str(home),
                    "TRAFFIC_CHAMPION_REFRESH_SECONDS": "0.5"}
        for key, value in embedded.items():
            monkeypatch.setenv(key, value)
        settings = Settings.from_env()
        Provisioner(settings).create(with_iam=False)
        # A small model: what is tested is where it goes and how it is served, not how it is fitted.
        X, y, _ = features.training_frame([r for r in synthetic_records if r.local_time < datetime(2015, 10, 1)])
        model_registry.connect(settings)
        version = model_registry.log_and_register(settings, batch_model.build_pipeline(max_iter=5).fit(X, y), X.head(20),
                                                  {}, {}, {}, run_name="embedded")
        model_registry.promote(settings, version)

        # The model's files were written by the server, under TRAFFIC_HOME, not by this process.
        assert any(p.name == "MLmodel" for p in (home / "mlartifacts").rglob("MLmodel"))
        assert (home / "mlflow.db").is_file()
        c = helpers.consumer(settings)
        records = [r for r in synthetic_records if r.local_time >= datetime(2015, 10, 1)][:100]
        helpers.produce(settings, records)
        helpers.drain(c, 100)
        assert c.champion.version == version
        assert model_registry.champion_version(settings)[0] == version
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        assert s3.list_objects_v2(Bucket=settings.bucket)["KeyCount"] > 0
    finally:
        out = _emulator("down", env)
    assert "MLflow server stopped" in out and "emulator stopped" in out
    helpers.wait_until(lambda: not any(alive(pid) for pid in pids), 30, message="both servers to exit")
    assert not tracking_server.healthy(f"http://127.0.0.1:{tracking_port}")
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, 0.5)


def test_a_taken_port_is_reported_and_down_cleans_up(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "TRAFFIC_HOME": str(home), "PYTHONPATH": str(ROOT)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "infra.emulator", "up", "--port", str(free_port()),
                               "--tracking-port", str(taken.getsockname()[1])],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1
    assert "the embedded stack did not start" in done.stderr and "Traceback" not in done.stderr
    moto = int((home / "emulator.pid").read_text())  # started before the MLflow server failed
    assert not (home / "tracking.pid").exists()
    assert "emulator stopped" in _emulator("down", env)
    helpers.wait_until(lambda: not alive(moto), 30, message="the moto server to exit")
