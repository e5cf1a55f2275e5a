"""The consumer and the retrainer as services of the embedded stack: running after start, more
hours replayed into them, stopped by ``python -m infra.emulator down``."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime

import pytest

from adapters import model_registry
from core import batch_model, features
from core.config import Settings
from infra import services
from infra.provision import Provisioner
from infra.server_process import alive
from tests.conftest import ROOT, free_port
from tests.integration import helpers
from training.jobs import TRAIN_END_TAG

pytestmark = pytest.mark.integration

TRAIN_END = datetime(2015, 10, 1)


def _python(*args: str, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, *args], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(settings: Settings) -> list[str]:
    return helpers.store(settings).read_predictions()["event_id"].tolist()


def test_services_run_until_down_and_read_a_second_replay_without_a_restart(tmp_path, monkeypatch, synthetic_csv,
                                                                            synthetic_records):
    port, tracking_port = free_port(), free_port()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    # What `make demo` sets, and a small model: what is tested is how the services run, not how they predict.
    embedded = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "embedded",
                "AWS_SECRET_ACCESS_KEY": "embedded", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{tracking_port}", "TRAFFIC_HOME": str(tmp_path / "home"),
                "TRAFFIC_DATA": str(synthetic_csv), "TRAFFIC_POLL_SECONDS": "0.05", "TRAFFIC_BATCH_TREES": "5"}
    for key, value in embedded.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    _python("-m", "infra.emulator", "up", "--port", str(port), "--tracking-port", str(tracking_port))
    pids: dict[str, int | None] = {}
    try:
        assert services.running(settings) == {"consumer": None, "retrainer": None}  # `up` starts neither
        Provisioner(settings).create(with_iam=False)
        X, y, _ = features.training_frame([r for r in synthetic_records if r.local_time < TRAIN_END])
        model_registry.connect(settings)
        version = model_registry.log_and_register(settings, batch_model.build_pipeline(max_iter=5).fit(X, y),
                                                  X.head(20), {}, {}, {TRAIN_END_TAG: TRAIN_END.isoformat()},
                                                  run_name="services")
        model_registry.promote(settings, version)

        started = services.start(settings)
        pids = services.running(settings)
        assert [s.pid for s in started] == [pids["consumer"], pids["retrainer"]] and all(pids.values())
        assert services.start(settings)[0].already_running  # a second start leaves them as they are

        first, second = ([r.event_id for r in synthetic_records if r.local_time.date() == day]
                         for day in (date(2015, 10, 1), date(2015, 10, 2)))
        _python("-m", "producer", "--start", "2015-10-01", "--end", "2015-10-01", "--speed", "max", "--no-progress")
        helpers.wait_until(lambda: sorted(_rows(settings)) == first, 120, message="the first day's rows")
        # `make replay`: after the last hour put, into the consumer still running.
        _python("-m", "producer", "--resume", "--end", "2015-10-02", "--speed", "max", "--no-progress")
        helpers.wait_until(lambda: sorted(_rows(settings)) == first + second, 120, message="the second day's rows")
        assert services.running(settings) == pids
    finally:
        out = _python("-m", "infra.emulator", "down")
    for name, pid in pids.items():
        assert f"{name} stopped (pid {pid})" in out
    helpers.wait_until(lambda: not any(alive(pid) for pid in pids.values()), 30, message="both services to exit")
    assert not (settings.home / "consumer.pid").exists() and not (settings.home / "retrainer.pid").exists()
    again = _python("-m", "infra.emulator", "down")  # nothing left to stop
    assert "consumer not running" in again and "retrainer not running" in again
