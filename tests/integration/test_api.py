"""``python -m serve`` as a user runs it, against the embedded stack after a replay."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta

import pytest

from adapters import aws
from core.schema import encode, event_id_for
from infra.provision import Provisioner
from tests.conftest import ROOT
from tests.integration import helpers
from training.jobs import train_initial

pytestmark = pytest.mark.integration

START = datetime(2015, 10, 1)
BOUNDS = ("served_lower_80", "served_upper_80", "served_lower_90", "served_upper_90")


class Api:
    """A live API process on a free port, and requests to it."""

    def __init__(self, tmp_path, name: str = "api") -> None:
        self.log_path = tmp_path / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAFFIC_API_PORT": "0", "TRAFFIC_API_REFRESH_SECONDS": "0.2"}
        self.process = subprocess.Popen([sys.executable, "-m", "serve"], cwd=ROOT, env=env,
                                        stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)
        found = helpers.wait_until(self._port, 120, 0.1, f"the API to listen (log: {self.log_path})")
        self.base = f"http://127.0.0.1:{found}"

    def _port(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the API exited with {self.process.returncode}: {self.log_path.read_text()}")
        match = re.search(r"on http://[\d.]+:(\d+)", self.log_path.read_text())
        return int(match.group(1)) if match else None

    def call(self, path: str, body: bytes | None = None) -> tuple[int, object]:
        request = urllib.request.Request(self.base + path, data=body, method="POST" if body is not None else "GET",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def without_volume(record) -> bytes:
    document = json.loads(encode(record))
    del document["traffic_volume"]
    return json.dumps(document).encode()


def stored_state(settings) -> tuple[list, list]:
    """The table's items and the bucket's state objects: what a read-only API must leave as they are."""
    items = aws.client("dynamodb", settings).scan(TableName=settings.checkpoint_table, ConsistentRead=True)["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items), helpers.store(settings).list_keys("state/")


def test_the_api_answers_what_the_consumer_then_writes_and_follows_state_and_champion(settings, synthetic_records,
                                                                                     tmp_path):
    Provisioner(settings).create(with_iam=False)
    train_initial(settings, helpers.store(settings), None, START)
    records = [r for r in synthetic_records if r.local_time >= START][:400]
    consumer = helpers.consumer(settings)
    helpers.produce(settings, records[:300])
    helpers.drain(consumer, 300)
    api = Api(tmp_path)
    try:
        status, health = api.call("/health")
        assert status == 200 and health["ready"] and health["champion_version"] == "1", health

        # The next hour's forecast: after the newest committed hour, with its weather.
        status, ahead = api.call("/stations/301/forecast")
        assert status == 200, ahead
        newest = records[299]
        assert ahead["as_of"] == newest.event_time.isoformat()
        assert datetime.fromisoformat(ahead["hour"]) == newest.event_time + timedelta(hours=1)
        assert ahead["batch_model_version"] == "1"
        assert ahead["intervals"]["90"]["lower"] <= ahead["intervals"]["80"]["lower"] <= ahead["served_prediction"]
        assert ahead["served_prediction"] <= ahead["intervals"]["80"]["upper"] <= ahead["intervals"]["90"]["upper"]

        # /predict of the next record, volume left out, is what the consumer writes for it.
        before = stored_state(settings)
        status, asked = api.call("/predict", without_volume(records[300]))
        assert status == 200, asked
        assert api.call("/predict", without_volume(records[300]))[1] == asked  # learned nothing
        status, explained = api.call("/stations/301/explain")
        assert status == 200, explained
        assert stored_state(settings) == before  # wrote nothing
        helpers.produce(settings, records[300:301])
        helpers.drain(consumer, 301)
        row = helpers.store(settings).read_predictions().set_index("event_id").loc[records[300].event_id]
        for column in ("batch_prediction", "online_prediction", "served_prediction", *BOUNDS):
            assert asked[column] == row[column], column
        assert asked["batch_model_version"] == row["batch_model_version"]

        # The explanation adds up to the forecast's batch prediction, largest contribution first.
        total = explained["base"] + explained["expected_change"] + sum(c["contribution"] for c in explained["contributions"])
        assert explained["prediction"] == pytest.approx(ahead["batch_prediction"], abs=1e-6)
        assert total == pytest.approx(explained["prediction"], abs=1e-3)
        magnitudes = [abs(c["contribution"]) for c in explained["contributions"]]
        assert magnitudes == sorted(magnitudes, reverse=True) and len(magnitudes) == 20
        status, problem = api.call(f"/stations/301/explain?hour={newest.event_time.isoformat()}".replace("+", "%2B"))
        assert status == 422 and problem["reason"] == "hour_not_known", problem

        # Newer committed state, then a new champion, without a restart.
        helpers.wait_until(lambda: api.call("/stations/301/forecast")[1]["as_of"] == records[300].event_time.isoformat(),
                           30, 0.1, "the API to read the newer committed state")
        train_initial(settings, None, None, START - timedelta(days=30))
        helpers.wait_until(lambda: api.call("/health")[1]["champion_version"] == "2", 30, 0.1,
                           "the API to load the new champion")
        assert api.call("/stations/301/forecast")[1]["batch_model_version"] == "2"

        status, posted = api.call("/explain", without_volume(records[301]))  # any record the stream would admit
        assert status == 200 and posted["hour"] == records[301].event_time.isoformat() and posted["model_version"] == "2"

        # Every error case, each with its reason.
        assert api.call("/stations/999/forecast")[0] == 404
        assert api.call("/stations/999/explain")[0] == 404
        status, problem = api.call("/predict", b"{not json")
        assert (status, problem["reason"]) == (422, "invalid_json")
        status, problem = api.call("/predict", json.dumps({"schema_version": 9}).encode())
        assert (status, problem["reason"]) == (422, "unsupported_schema_version")
        status, problem = api.call("/predict", without_volume(records[300]))
        assert (status, problem["reason"]) == (422, "duplicate_event")
        unknown = json.loads(without_volume(records[301]))
        unknown["station_id"], unknown["event_id"] = "999", event_id_for("999", records[301].event_time)
        assert api.call("/predict", json.dumps(unknown).encode())[0] == 404

        status, text = api.call("/metrics")
        assert status == 200 and 'traffic_api_requests_total{route="/predict",status="200"}' in text
        assert "traffic_api_champion_version 2.0" in text
        status, spec = api.call("/openapi.json")
        assert status == 200 and {"/stations/{station_id}/forecast", "/predict", "/health"} <= set(spec["paths"])
        assert api.call("/docs")[0] == 200
    finally:
        api.stop()


def test_without_a_champion_the_api_says_so_and_a_taken_port_stops_it(settings, synthetic_records, tmp_path):
    Provisioner(settings).create(with_iam=False)
    consumer = helpers.consumer(settings)
    records = [r for r in synthetic_records if r.local_time >= START][:50]
    helpers.produce(settings, records)
    helpers.drain(consumer, 50)
    api = Api(tmp_path)
    try:
        status, health = api.call("/health")
        assert status == 503 and health["reasons"] == ["no champion loaded"], health
        status, problem = api.call("/stations/301/forecast")
        assert (status, problem["reason"]) == (503, "no_champion")
        assert "python -m training train" in problem["message"]
        assert api.call("/predict", without_volume(records[0]))[0] == 503

        port = api.base.rsplit(":", 1)[1]
        taken = subprocess.run([sys.executable, "-m", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "TRAFFIC_API_PORT": port})
        assert taken.returncode == 2, taken.stderr
        lines = [line for line in taken.stderr.splitlines() if "TRAFFIC_API_PORT" in line]
        assert len(lines) == 1 and "is taken" in lines[0], taken.stderr
    finally:
        api.stop()
