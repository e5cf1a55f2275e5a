"""The consumer's cost in two checkouts, side by side in one run: an A/B.

    git worktree add /tmp/before <commit>
    python -m bench.ab --a /tmp/before --b . [--records 50000] [--shards 1,4] [--rounds 3]

Each run is a fresh process of one checkout (its own code, this virtualenv): a moto server,
a stream filled with the same synthetic records (32 stations), then the consumer in that
process reading it to the end, as ``bench.throughput``'s end-to-end rows do, with the same
batch model (fitted once here, so both serve the same trees). Measured over the consuming
alone: the process's CPU seconds per record (user + system of all its threads, the
consumer's I/O threads included, the moto server excluded), which sharing the cores with
other work changes far less than it changes a wall-clock rate, and the wall-clock rate.
The runs alternate A, B, A, B ... so a change in the machine's speed falls on both, and each
round's B / A is reported too. With two cores or more, the moto server and the measured process
are pinned to one core each, and hashing is seeded, to narrow the spread of one version's runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import describe

#: What one run does, in the checkout on its PYTHONPATH; only interfaces both sides have.
RUN = r"""
import json, os, pickle, sys, time
from pathlib import Path
workdir, model_path, records_count, shards = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from infra.emulator import free_port, start
port = free_port()
emulator = start(port, workdir / "moto.log")
if len(os.sched_getaffinity(0)) > 1:  # the emulator on one core, this process on another
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(emulator.pid, {cores[0]})
    os.sched_setaffinity(0, {cores[1]})
os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                   "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                   "TRAFFIC_HOME": str(workdir)})
try:
    from adapters import aws
    from adapters.result_store import ResultStore
    from bench.throughput import StaticChampion, settings_for, synthetic
    from consumer.checkpoints import CheckpointStore
    from consumer.worker import Consumer
    from core.batch_model import serve_single_threaded
    from infra.provision import Provisioner
    from producer.kinesis_writer import KinesisWriter
    from producer.run import replay

    serve_single_threaded()
    model = pickle.load(open(model_path, "rb"))
    records = synthetic(records_count)
    settings = settings_for(shards)
    Provisioner(settings).create(with_iam=False)
    replay(records, KinesisWriter(aws.client("kinesis", settings), settings.stream_name), None, show_progress=False)
    s3 = aws.client("s3", settings)
    consumer = Consumer(settings, aws.stream_reader(settings), ResultStore(s3, settings.bucket),
                        CheckpointStore(aws.client("dynamodb", settings), s3, settings.checkpoint_table,
                                        settings.bucket, settings.app_name), StaticChampion(model))
    consumer.seed()
    consumer.discover()
    cpu, wall = time.process_time(), time.perf_counter()
    while consumer.stats.records < len(records):
        consumer.poll()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    consumer.close()
    print(json.dumps({"cpu_us": 1e6 * cpu / len(records), "rate": len(records) / wall}))
finally:
    emulator.terminate()
"""


def run(checkout: Path, model_path: Path, records: int, shards: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as workdir:
        done = subprocess.run([sys.executable, "-c", RUN, workdir, str(model_path), str(records), str(shards)],
                              cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"},
                              capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the run in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, type=Path, help="the checkout measured first")
    parser.add_argument("--b", required=True, type=Path)
    parser.add_argument("--records", type=int, default=50000)
    parser.add_argument("--shards", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from bench.throughput import fitted_model
    from core.config import Settings

    model = fitted_model(Settings.from_env().batch_trees)
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.NamedTemporaryFile(suffix=".pkl") as model_file:
        pickle.dump(model, model_file)
        model_file.flush()
        for round_ in range(args.rounds):
            for shards in (int(s) for s in args.shards.split(",")):
                for side, checkout in (("A", args.a), ("B", args.b)):
                    sample = run(checkout.resolve(), Path(model_file.name), args.records, shards)
                    samples.setdefault((side, shards), []).append(sample)
                    print(f"round {round_ + 1}, {shards} shard(s), {side}: {sample}", flush=True)
    print()
    print(describe())
    print(f"A = {args.a}, B = {args.b}; {args.records:,} records, {args.rounds} runs of each, alternating\n")
    print("| shards | A: CPU µs / record (median, min–max) | B | B / A of medians | B / A paired by round "
          "(median, min–max) | A: records/s (median) | B | B / A |")
    print("|---:|---|---|---:|---|---:|---:|---:|")
    for shards in (int(s) for s in args.shards.split(",")):
        a, b = samples[("A", shards)], samples[("B", shards)]
        a_cpu, b_cpu = [s["cpu_us"] for s in a], [s["cpu_us"] for s in b]
        paired = [y / x for x, y in zip(a_cpu, b_cpu)]
        a_rate, b_rate = statistics.median(s["rate"] for s in a), statistics.median(s["rate"] for s in b)
        print(f"| {shards} | {statistics.median(a_cpu):.1f} ({min(a_cpu):.1f}–{max(a_cpu):.1f}) | "
              f"{statistics.median(b_cpu):.1f} ({min(b_cpu):.1f}–{max(b_cpu):.1f}) | "
              f"{statistics.median(b_cpu) / statistics.median(a_cpu):.3f} | "
              f"{statistics.median(paired):.3f} ({min(paired):.3f}–{max(paired):.3f}) | {a_rate:,.0f} | "
              f"{b_rate:,.0f} | {b_rate / a_rate:.3f} |")

if __name__ == "__main__":
    main()
