"""The components' Prometheus endpoints, scraped from their own processes as Prometheus would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters import aws
from core.schema import encode
from infra.provision import Provisioner
from tests.conftest import ROOT, free_port
from tests.integration import helpers
from training.jobs import train_initial

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample at ``http://127.0.0.1:<port>/metrics``, by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def test_the_consumer_serves_its_counts_lag_leases_champion_and_errors(settings, synthetic_records, monkeypatch,
                                                                     tmp_path):
    Provisioner(settings).create(with_iam=False)
    version = train_initial(settings, helpers.store(settings), None, datetime(2015, 10, 1))
    records = [r for r in synthetic_records if r.local_time >= datetime(2015, 10, 1)][:300]
    entries = [{"Data": encode(r), "PartitionKey": "301"} for r in records[:150]]
    entries += [{"Data": d, "PartitionKey": "301"} for d in (b"{oops", json.dumps({"schema_version": 3}).encode())]
    entries += [{"Data": encode(r), "PartitionKey": "301"} for r in records[150:]]
    kinesis = aws.client("kinesis", settings)
    for i in range(0, len(entries), 100):
        kinesis.put_records(StreamName=settings.stream_name, Records=entries[i : i + 100])

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAFFIC_CONSUMER_METRICS_PORT": str(port)}
    log = open(tmp_path / "consumer.log", "wb")
    consumer = subprocess.Popen([sys.executable, "-m", "consumer", "--no-tracking"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        def counted():
            try:
                samples = scrape(port)
            except OSError:
                return None
            return samples if total(samples, "traffic_consumer_records_read_total") == len(entries) else None

        samples = helpers.wait_until(counted, 120, 0.2, "the consumer's metrics to count every record")
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(60)
    assert total(samples, "traffic_consumer_result_rows_total") == 300
    assert total(samples, "traffic_consumer_dead_letters_total", reason="invalid_json") == 1
    assert total(samples, "traffic_consumer_dead_letters_total", reason="unsupported_schema_version") == 1
    assert total(samples, "traffic_consumer_batch_failures_total") == 0
    assert total(samples, "traffic_consumer_leases_held") == 1
    assert total(samples, "traffic_consumer_champion_version") == float(version)
    assert total(samples, "traffic_consumer_newest_event_timestamp_seconds") == records[-1].event_time.timestamp()
    assert total(samples, "traffic_consumer_behind_latest_seconds") == 0.0  # read to the tip
    assert total(samples, "traffic_consumer_batch_duration_seconds_count", stage="process") >= 1
    for model in ("batch", "online", "served"):
        mae = total(samples, "traffic_consumer_rolling_mae_vehicles", station_id="301", model=model)
        assert 0 < mae < 2000, (model, mae)


@pytest.mark.parametrize("component", ["producer", "consumer"])
def test_a_taken_metrics_port_stops_the_component_at_start_with_one_line(component, settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        variable = f"TRAFFIC_{component.upper()}_METRICS_PORT"
        done = subprocess.run([sys.executable, "-m", component], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT), variable: str(port)})
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{component}: the metrics port 127.0.0.1:{port} is taken") and variable in last
    assert "Traceback" not in done.stderr
