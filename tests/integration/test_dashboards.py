"""Every query of the Grafana dashboard returns data from a native Prometheus scraping the real processes.

A producer replays hours with a level shift into the stream after a few malformed records,
a consumer predicts them, a trainer retrains during the replay, and Prometheus scrapes the
three every second. Each panel target's PromQL is then evaluated through Prometheus's HTTP
API while they run: a renamed metric or label, or an expression Prometheus cannot parse,
fails here rather than as an empty panel.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from adapters import aws
from core import synthetic
from core.config import Settings
from core.errors import PermanentError
from infra import prometheus_server, server_process
from infra.provision import Provisioner
from tests.conftest import ROOT, free_port
from tests.integration import helpers
from training.jobs import train_initial

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "dashboards" / "grafana" / "dashboards" / "traffic-stream.json"
#: What Grafana would put for its variables on a dashboard of the last few minutes scraped every second.
VARIABLES = {"$__rate_interval": "20s", "$__range": "5m"}
#: Counts of events the run makes happen once at least: above zero, not only present (a series that
#: appeared at 1, not at 0, would show no increase).
MUST_RISE = {f"sum by (model) (increase(traffic_consumer_drift_detections_total[{VARIABLES['$__range']}]))",
             f"sum by (trigger) (increase(traffic_trainer_retrains_total[{VARIABLES['$__range']}]))"}
#: Five weeks of training hours (enough for the weekly lags, few enough to fit quickly), then the replay's.
DATA_START, DATA_DAYS, TRAIN_END = "2015-08-25", 57, datetime(2015, 10, 1)
#: The replay: hours from the end of training, with volumes 40 % lower from the third day on.
REPLAY_START, REPLAY_END, SHIFT = "2015-10-01", "2015-10-20", "2015-10-04"
REPLAY_HOURS = 20 * 24
#: Long enough for Prometheus to scrape the producer many times. Queries are evaluated every second
#: from its start, and each must return data at least once: an instant query finds nothing of a
#: target that stopped answering (Prometheus marks its series stale), so the producer's are seen
#: while it replays, the trainer's once it has retrained.
REPLAY_SECONDS = 20
#: How long after the replay starts every query must have returned data (a retrain on a busy machine is slow).
DEADLINE = 90


def expressions() -> list[tuple[str, str]]:
    """Every panel target's (panel title, PromQL), Grafana's variables substituted."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: a Grafana variable the test does not set: {expr}"
            found.append((panel["title"], expr))
    return found


def query(port: int, expr: str) -> list[dict]:
    """The series of an instant query; a query Prometheus refuses fails the test with its reason."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]
    except urllib.error.HTTPError as error:
        pytest.fail(f"Prometheus refused {expr}: {error.read().decode()}")


def has_data(series: list[dict]) -> bool:
    return any(not math.isnan(float(s["value"][1])) for s in series)


def has_risen(series: list[dict]) -> bool:
    return any(float(s["value"][1]) > 0 for s in series)


def launch(module: list[str], component: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``python -m <module>`` in a process group of its own, serving its metrics on ``port``."""
    env = {**env, f"TRAFFIC_{component.upper()}_METRICS_PORT": str(port)}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *module], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def serving(process: subprocess.Popen, port: int, log: Path) -> None:
    """Return once ``process`` serves its metrics; fail with its log if it exits first."""
    try:
        server_process.wait_ready(lambda: server_process.http_ok(f"http://127.0.0.1:{port}/metrics"), 90, process,
                                  what=log.stem)
    except server_process.ServerError as error:
        pytest.fail(f"{error}:\n{server_process.log_tail(log)}")


def test_every_dashboard_query_returns_data_from_the_running_components(settings, monkeypatch, tmp_path):
    try:
        prometheus_server.binary()
    except PermanentError as missing:
        pytest.skip(str(missing))
    assert MUST_RISE <= {expr for _, expr in expressions()}, "MUST_RISE names queries the dashboard no longer has"
    data = synthetic.write_csv(tmp_path / "shifted.csv.gz", start=DATA_START, hours=24 * DATA_DAYS, seed=11,
                               level_shift=(SHIFT, 0.6))
    # Retrain every 2 days of event time on the last day's holdout, so the trainer retrains during the replay,
    # and reject every retrain (no MAE is below zero): a rejected one skips the refit and the registration.
    for name, value in {"TRAFFIC_DATA": str(data), "TRAFFIC_RETRAIN_EVERY_DAYS": "2", "TRAFFIC_HOLDOUT_DAYS": "1",
                        "TRAFFIC_PROMOTION_TOLERANCE": "-1"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    Provisioner(settings).create(with_iam=False)
    # One OpenMP thread per fit here and in the trainer: four processes share the machine, and the
    # spinning threads of concurrent fits slow each other down several times over.
    with threadpool_limits(limits=1, user_api="openmp"):
        train_initial(settings, helpers.store(settings), None, TRAIN_END)
    malformed = [b"{oops", json.dumps({"schema_version": 3}).encode()]
    aws.client("kinesis", settings).put_records(StreamName=settings.stream_name,
                                                Records=[{"Data": d, "PartitionKey": "301"} for d in malformed])

    ports = {component: free_port() for component in ("producer", "consumer", "trainer", "prometheus")}
    prometheus = prometheus_server.start({c: f"127.0.0.1:{p}" for c, p in ports.items() if c != "prometheus"},
                                         tmp_path / "prometheus", ports["prometheus"], interval=1.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    logs = {name: tmp_path / f"{name}.log" for name in ("producer", "consumer", "trainer")}
    processes = {}
    try:
        processes["consumer"] = launch(["consumer", "--no-tracking"], "consumer", ports["consumer"], env,
                                       logs["consumer"])
        processes["trainer"] = launch(["training", "retrain", "--follow", "--poll-seconds", "1"], "trainer",
                                      ports["trainer"], env, logs["trainer"])
        serving(processes["consumer"], ports["consumer"], logs["consumer"])
        speed = REPLAY_HOURS * 3600 // REPLAY_SECONDS
        processes["producer"] = launch(["producer", "--start", REPLAY_START, "--end", REPLAY_END, "--speed",
                                        str(speed), "--no-progress"], "producer", ports["producer"], env,
                                       logs["producer"])

        queries = expressions()
        seen = dict.fromkeys(queries, False)

        def every_query_has_had_data() -> bool:
            for key in queries:
                series = query(ports["prometheus"], key[1])
                seen[key] = seen[key] or (has_risen(series) if key[1] in MUST_RISE else has_data(series))
            for name in ("consumer", "trainer"):  # the producer stops when its replay ends
                if processes[name].poll() is not None:
                    raise AssertionError(f"the {name} exited (code {processes[name].returncode}):\n"
                                         f"{server_process.log_tail(logs[name], lines=10)}")
            return all(seen.values())

        try:
            helpers.wait_until(every_query_has_had_data, DEADLINE, 1.0, "every dashboard query to return data")
        except AssertionError as failure:
            empty = "\n".join(f"  {title}: {expr}" for (title, expr), had in seen.items() if not had)
            raise AssertionError(f"{failure}\nqueries that never returned data:\n{empty}") from None
    finally:
        for process in processes.values():
            server_process.stop(process, 10)
        prometheus_server.stop(prometheus)
    assert len(queries) >= 10
