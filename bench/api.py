"""``python -m bench.api``: the prediction API against ``mlflow models serve`` of the same champion, side by side.

Trains the batch model on the hours before ``--start`` (the product's size), replays
``--days`` of hours through the real producer, stream and consumer on an embedded stack (a
moto server started here), then starts ``python -m serve`` and ``mlflow models serve`` of
the registry's champion (one worker each, the local environment), and loads each with
ApacheBench (``ab``, keep-alive) at each concurrency of ``--concurrency``:

* ``GET /stations/301/forecast``: the next hour (the API's cache, refreshed when the state
  or the champion changes);
* ``POST /predict``: the next hour's record (the API computes its features from the
  committed state, predicts with the batch model, the online model and the combination);
* ``POST /invocations`` of ``mlflow models serve``: the same hour's feature row, already
  computed (the batch model alone: what a user would run instead).

Prints requests/s and the p50 / p99 latency of each, and the peak RSS of both servers.
The load generator runs on the same cores as the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("TRAFFIC_DATA"), help="the dataset (default TRAFFIC_DATA)")
    parser.add_argument("--start", default="2017-01-01", help="the first hour replayed (trained on those before)")
    parser.add_argument("--days", type=float, default=7.0, help="days of hours replayed before the load")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0, help="about how long each load runs")
    args = parser.parse_args(argv)
    if shutil.which("ab") is None:
        parser.error("ApacheBench (ab) is not installed: apt-get install apache2-utils (Debian), or your system's package")
    sys.stdout.reconfigure(line_buffering=True)
    if args.data:
        os.environ["TRAFFIC_DATA"] = args.data
    from bench.accuracy import embedded_stack

    from infra import server_process, tracking_server

    with embedded_stack("cadence") as workdir:
        # The MLflow server, as the embedded stack and compose run it: the API and mlflow
        # models serve reach the registry over HTTP, as in production.
        tracking, url = tracking_server.start(f"sqlite:///{workdir / 'mlflow.db'}", str(workdir / "artifacts"),
                                              server_process.free_port(), workdir / "mlflow-server.log")
        os.environ["MLFLOW_TRACKING_URI"] = url
        try:
            table = run(workdir, datetime.fromisoformat(args.start), timedelta(days=args.days),
                        [int(c) for c in args.concurrency.split(",")], args.seconds)
        finally:
            server_process.stop(tracking, 30)
    print(describe())
    print(table)
    return 0


def run(workdir: Path, start: datetime, span: timedelta, concurrency: list[int], seconds: float) -> str:
    from adapters import aws
    from adapters.result_store import ResultStore
    from consumer.__main__ import build
    from core import dataset
    from core.config import Settings
    from core.features import FEATURE_COLUMNS
    from infra.provision import Provisioner
    from infra.server_process import free_port
    from producer.kinesis_writer import KinesisWriter
    from producer.run import replay
    from training.jobs import train_initial

    settings = Settings.from_env()
    Provisioner(settings).create(with_iam=False)
    store = ResultStore(aws.client("s3", settings), settings.bucket)
    train_initial(settings, store, None, start)
    records = dataset.load_records(None, settings.data_path, settings.cache_dir, settings.station_id, start,
                                   start + span)
    consumer = build(settings, track=False)
    replay(records, KinesisWriter(aws.client("kinesis", settings), settings.stream_name), None, show_progress=False)
    while consumer.stats.records < len(records):
        if not consumer.poll():
            time.sleep(0.02)

    # mlflow models serve runs ``uvicorn`` from PATH: this interpreter's.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAFFIC_API_PORT": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    api_log = workdir / "api.log"
    api = subprocess.Popen([sys.executable, "-m", "serve"], cwd=ROOT, env=env, stdout=api_log.open("wb"),
                           stderr=subprocess.STDOUT)
    mlflow_port = free_port()
    mlflow_log = workdir / "mlflow-serve.log"
    mlflow = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                               f"models:/{settings.model_name}@champion", "--env-manager", "local", "-h", "127.0.0.1",
                               "-p", str(mlflow_port), "--workers", "1"],
                              cwd=ROOT, env=env, stdout=mlflow_log.open("wb"), stderr=subprocess.STDOUT)
    try:
        api_port = _wait(lambda: _logged_port(api_log), api, api_log)
        base = f"http://127.0.0.1:{api_port}"
        ahead = _get(f"{base}/stations/301/forecast")
        started_rss = _rss(api.pid)
        record = _next_record(records[-1], ahead)
        asked = _post(f"{base}/predict", record)
        features = _features(settings, record, FEATURE_COLUMNS)
        _wait(lambda: _ready(f"http://127.0.0.1:{mlflow_port}/ping"), mlflow, mlflow_log, timeout=300)
        invocation = json.dumps({"dataframe_split": {"columns": FEATURE_COLUMNS, "data": [features]}}).encode()
        served = json.loads(_post_raw(f"http://127.0.0.1:{mlflow_port}/invocations", invocation))["predictions"][0]
        assert abs(served - asked["batch_prediction"]) < 1e-6, (served, asked["batch_prediction"])
        body = workdir / "predict.json"
        body.write_bytes(record)
        invocations = workdir / "invocations.json"
        invocations.write_bytes(invocation)
        loads = [
            ("API GET /stations/301/forecast", f"{base}/stations/301/forecast", None),
            ("API POST /predict", f"{base}/predict", body),
            ("mlflow models serve POST /invocations", f"http://127.0.0.1:{mlflow_port}/invocations", invocations),
        ]
        lines = ["| endpoint | concurrency | requests/s | p50 ms | p99 ms | failed |", "|---|---:|---:|---:|---:|---:|"]
        for name, url, payload in loads:
            for c in concurrency:
                result = _ab(url, payload, c, seconds)
                lines.append(f"| {name} | {c} | {result['rps']:,.0f} | {result['p50']:.0f} | {result['p99']:.0f} | "
                             f"{result['failed']} |")
        lines.append("")
        lines.append(f"RSS of the API: {started_rss:.0f} MB ready, {_peak_rss(api.pid):.0f} MB at its peak; "
                     f"mlflow models serve: {_peak_rss_tree(mlflow.pid):.0f} MB at its peak (its largest process)")
        return "\n".join(lines)
    finally:
        for process in (api, mlflow):
            process.terminate()
        for process in (api, mlflow):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _ab(url: str, payload: Path | None, concurrency: int, seconds: float) -> dict:
    """One ApacheBench run: a short one to size it, then one of about ``seconds``."""
    def once(requests: int) -> dict:
        command = ["ab", "-q", "-k", "-r", "-n", str(requests), "-c", str(concurrency)]
        if payload is not None:
            command += ["-p", str(payload), "-T", "application/json"]
        out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds * 10 + 120).stdout
        rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
        percent = dict(re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.M))
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        return {"rps": rps, "p50": float(percent["50"]), "p99": float(percent["99"]),
                "failed": failed + (int(non2xx.group(1)) if non2xx else 0)}

    probe = once(max(50, concurrency * 4))
    return once(max(concurrency * 10, int(probe["rps"] * seconds)))


def _logged_port(log: Path) -> int | None:
    found = re.search(r"on http://[\d.]+:(\d+)", log.read_text(errors="replace"))
    return int(found.group(1)) if found else None


def _wait(check, process, log: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}: {log.read_text()[-3000:]}")
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"{process.args[:4]} not ready in {timeout:.0f} s: {log.read_text()[-3000:]}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post_raw(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def _post(url: str, body: bytes) -> dict:
    return json.loads(_post_raw(url, body))


def _next_record(newest, ahead: dict) -> bytes:
    """The forecast hour's record as a user would send it: the next hour, the newest hour's weather, no volume."""
    from core.schema import encode, event_id_for

    document = json.loads(encode(newest))
    document["event_time"] = ahead["hour"]
    document["event_id"] = event_id_for(newest.station_id, datetime.fromisoformat(ahead["hour"]))
    document["holiday"] = None
    del document["traffic_volume"]
    return json.dumps(document).encode()


def _features(settings, record: bytes, columns: list[str]) -> list[float | None]:
    """The hour's feature row from the committed state, as the API computes it."""
    from adapters import aws
    from adapters.committed_state import CommittedStates
    from core import forecast
    from core.schema import decode

    states = CommittedStates(*aws.clients(settings, "dynamodb", "s3"), settings.checkpoint_table, settings.bucket,
                             settings.app_name)
    states.refresh()
    document = json.loads(record)
    document["traffic_volume"] = 0
    hour = decode(json.dumps(document).encode())
    values = forecast.features(states.stations[hour.station_id], hour)
    return [None if values[name] != values[name] else values[name] for name in columns]


def _peak_rss(pid: int, field: str = "VmHWM") -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss(pid: int) -> float:
    return _peak_rss(pid, "VmRSS")


def _peak_rss_tree(pid: int) -> float:
    """The largest peak RSS among ``pid`` and its children (mlflow starts uvicorn as a child)."""
    peaks = [_peak_rss(pid)]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for cpid in child.read_text().split():
            try:
                peaks.append(_peak_rss_tree(int(cpid)))
            except OSError:
                pass
    return max(peaks)


if __name__ == "__main__":
    sys.exit(main())
