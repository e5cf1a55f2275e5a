"""``python -m bench.throughput``: records/s of the core, the consumer and the producer; latency; memory.

1. the pure processing core in one process: decode + features + batch prediction (one
   call per batch of ``TRAFFIC_BATCH_SIZE`` records, as the consumer groups them, and per
   batch of each ``--call-sizes``) + online predict-and-learn;
2. the consumer end to end against a moto server: GetRecords -> process -> S3 results ->
   DynamoDB checkpoint + S3 state, at 1, 4 and 16 shards;
3. the producer: PutRecords in 500-record calls, same shard counts;
4. latency from PutRecords to the prediction visible in S3 at a steady 100 records/s, with
   the consumer as its own process, and that process's peak RSS;
5. consumer processes (``--workers``, 1, 2 and 4) sharing 8 shards by lease, from a filled
   stream of 128 stations: their CPU seconds per 1,000 records and the scaling efficiency,
   the wall-clock rates, and their peak RSS working through that backlog
   (``--only-workers`` runs this part alone).

Records are synthetic (32 synthetic stations, so partition keys spread over the shards).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path


from bench.machine import describe


class StaticChampion:
    """A fitted batch model that never changes (the registry is not what is measured here)."""

    def __init__(self, model) -> None:
        from core.trees import predictor

        self.model, self.version, self.ready = model, "bench", True
        self._predict = predictor(model)  # as the registry's champion predicts

    def refresh(self, force: bool = False) -> bool:
        return False

    def predict(self, frame):
        return self._predict(frame)


def synthetic(total: int, stations: int = 32):
    from core import dataset, synthetic as syn

    hours = -(-total // stations)
    base = dataset.to_records(syn.generate(start="2014-01-01", hours=int(hours * 1.06) + 24, seed=11), "301")[:hours]
    return syn.many_stations(base, stations)[:total]


def fitted_model(trees: int):
    """The batch model with the served hyperparameters (``TRAFFIC_BATCH_TREES`` trees per
    member), fitted on synthetic history.

    What it predicts is not measured here, but its size is: prediction cost grows with the
    number of trees.
    """
    from core import batch_model, features

    X, y, _ = features.training_frame(synthetic(20000, stations=4))
    return batch_model.build_pipeline(**batch_model.sized(trees)).fit(X, y)


def bench_core(records, model, group: int) -> float:
    from core.processing import RawRecord, process_batch
    from core.schema import encode

    raws = [RawRecord(encode(r), "s", str(i), r.station_id) for i, r in enumerate(records)]
    predictor = StaticChampion(model)
    states: dict = {}
    started = time.perf_counter()
    for i in range(0, len(raws), group):
        process_batch(raws[i : i + group], states, predictor, "t")
    return len(raws) / (time.perf_counter() - started)


def bench_stages(records, model, call_sizes: list[int], trees: int) -> dict[str, float]:
    """Microseconds per record of each stage of the core, each timed on its own."""
    from core.ensemble import Combiner
    from core.features import StationHistory, to_frame
    from core.online_model import OnlineModel
    from core.results import result_row
    from core.schema import decode, encode

    payloads = [encode(r) for r in records]
    timings: dict[str, float] = {}

    def timed(name, work):
        started = time.perf_counter()
        result = work()
        timings[name] = (time.perf_counter() - started) / len(records) * 1e6
        return result

    decoded = timed("decode + validate (pydantic)", lambda: [decode(p) for p in payloads])
    histories: dict[str, StationHistory] = {}

    def featurize():
        rows = []
        for record in decoded:
            history = histories.setdefault(record.station_id, StationHistory())
            history.admit(record)
            rows.append(history.features(record))
            history.observe(record)
        return rows

    rows = timed("features (lag history)", featurize)
    for n in call_sizes:
        timed(f"batch model (2 × {trees:,} trees, {n:,}-row calls)",
              lambda n=n: [model.predict(to_frame(rows[i : i + n])) for i in range(0, len(rows), n)])
    models: dict[str, OnlineModel] = {}
    timed("online model predict + learn (River)",
          lambda: [models.setdefault(r.station_id, OnlineModel()).predict_then_learn(f, float(r.traffic_volume))
                   for r, f in zip(decoded, rows)])
    combiners: dict[str, Combiner] = {}

    def serve():
        for record, features in zip(decoded, rows):
            combiner = combiners.setdefault(record.station_id, Combiner())
            combiner.predict_then_learn(float(record.traffic_volume), 1.0, 2.0, record.wall_clock_hour)

    timed("served combination (recent-error weights, residual carried)", serve)
    timed("result rows", lambda: [result_row(r, batch_prediction=1.0, online_prediction=1.0, served_prediction=1.0,
                                             batch_model_version="b", online_updates=1, shard_id="s",
                                             sequence_number="1", processed_at="t")
                                  for r in decoded])
    return timings


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settings_for(shards: int):
    from core.config import Settings

    suffix = uuid.uuid4().hex[:8]
    return Settings.from_env().replace(stream_name=f"bench-{suffix}", bucket=f"bench-{suffix}",
                                       checkpoint_table=f"bench-{suffix}", stream_shards=shards,
                                       mlflow_bucket=f"bench-mlflow-{suffix}")


def bench_pipeline(records, model, shards: int) -> tuple[float, float]:
    from adapters import aws
    from adapters.result_store import ResultStore
    from consumer.checkpoints import CheckpointStore
    from consumer.worker import Consumer
    from infra.provision import Provisioner
    from producer.kinesis_writer import KinesisWriter
    from producer.run import replay

    settings = settings_for(shards)
    provisioner = Provisioner(settings)
    provisioner.create(with_iam=False)
    try:
        writer = KinesisWriter(aws.client("kinesis", settings), settings.stream_name)
        started = time.perf_counter()
        replay(records, writer, None, show_progress=False)
        producer_rate = len(records) / (time.perf_counter() - started)

        s3 = aws.client("s3", settings)
        consumer = Consumer(settings, aws.stream_reader(settings), ResultStore(s3, settings.bucket),
                            CheckpointStore(aws.client("dynamodb", settings), s3, settings.checkpoint_table,
                                            settings.bucket, settings.app_name), StaticChampion(model))
        consumer.seed()
        consumer.discover()
        started = time.perf_counter()
        while consumer.stats.records < len(records):
            consumer.poll()
        consumer_rate = len(records) / (time.perf_counter() - started)
    finally:
        provisioner.delete()
    return producer_rate, consumer_rate


def bench_latency(records, seconds: float, rate: float, workdir: Path,
                  tracking_uri: str) -> tuple[list[float], MemoryPeak]:
    """Put ``rate`` records/s for ``seconds``; return put->visible-in-S3 latencies and the consumer's memory."""
    from adapters import aws
    from adapters.result_store import PREDICTIONS_PREFIX, ResultStore
    from infra.provision import Provisioner

    settings = settings_for(1)
    Provisioner(settings).create(with_iam=False)
    consumer = start_consumer(settings, tracking_uri, workdir / "latency-consumer.log", TRAFFIC_POLL_SECONDS="0.05")
    kinesis = aws.client("kinesis", settings)
    store = ResultStore(aws.client("s3", settings), settings.bucket)
    from core.schema import encode

    count = int(seconds * rate)
    sample = records[:count]
    put_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    memory = MemoryPeak()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            fresh = store.list_keys(PREDICTIONS_PREFIX)
            now = time.perf_counter()
            if fresh:
                for event_id in store.read_prediction_objects(fresh)["event_id"]:
                    seen_at.setdefault(event_id, now)
                # Objects timed are taken away, so that each listing returns only new ones: a
                # listing of every object so far took 97 ms by the end of a 20 s run, and the
                # watcher's own lag was then a third of what it measured.
                store.s3.delete_objects(Bucket=settings.bucket, Delete={"Objects": [{"Key": k} for k in fresh]})
            try:
                memory.sample(consumer.pid)
            except OSError:
                pass
            if len(seen_at) >= count:
                return
            time.sleep(0.01)

    try:
        # Let the consumer start (imports, shard discovery) before the clock matters.
        kinesis.put_records(StreamName=settings.stream_name, Records=[{"Data": encode(sample[0]), "PartitionKey": "warm"}])
        deadline = time.monotonic() + 120
        while not store.list_keys(PREDICTIONS_PREFIX) and time.monotonic() < deadline:
            time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        for i, record in enumerate(sample[1:], start=1):
            due = started + i / rate
            while time.perf_counter() < due:
                time.sleep(max(0.0, due - time.perf_counter()))
            put_at[record.event_id] = time.perf_counter()
            kinesis.put_records(StreamName=settings.stream_name,
                                Records=[{"Data": encode(record), "PartitionKey": record.station_id}])
        watcher.join(60)
    finally:
        done.set()
        consumer.terminate()
        consumer.wait(30)
    latencies = [seen_at[e] - put_at[e] for e in put_at if e in seen_at]
    return latencies, memory


@contextmanager
def tracking_server(workdir: Path, s3_endpoint: str):
    """An ``mlflow server`` with its artifacts proxied to S3 on the emulator, as docker-compose
    and an AWS deployment run it: consumers then reach the registry over HTTP and hold no
    database client of their own. Yields its URI."""
    import boto3

    from infra import tracking_server as server
    from infra.emulator import free_port

    bucket = f"bench-mlflow-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    process, url = server.start(f"sqlite:///{workdir / 'mlflow-server.db'}", f"s3://{bucket}/artifacts", free_port(),
                                workdir / "mlflow-server.log", {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint})
    try:
        yield url
    finally:
        server.stop(process)


def startup_rss(workdir: Path, tracking_uri: str) -> MemoryPeak:
    """Peak memory of a consumer process from its start until it serves the champion of ``tracking_uri``.

    Loading the champion is when a consumer's memory peaks; this measures the process with
    MLflow's SQLite store inside it (``MLFLOW_TRACKING_URI=sqlite:///...``, as the tests run
    it), against the server that compose and the embedded stack run.
    """
    from infra.provision import Provisioner

    settings = settings_for(1)
    Provisioner(settings).create(with_iam=False)
    log_path = workdir / "startup-consumer.log"
    consumer = start_consumer(settings, tracking_uri, log_path)
    try:
        deadline = time.monotonic() + 120
        memory = MemoryPeak()
        while "serving batch model" not in log_path.read_text():
            if consumer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the consumer did not load the champion: see {log_path}")
            memory.sample(consumer.pid)
            time.sleep(0.1)
        memory.sample(consumer.pid)
        return memory
    finally:
        consumer.terminate()
        consumer.wait(30)


def start_consumer(settings, tracking_uri: str, log_path: Path, worker_id: str | None = None,
                   **environ: str) -> subprocess.Popen:
    """``python -m consumer`` as its own process on ``settings``' stream, bucket and table."""
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TRAFFIC_STREAM_NAME": settings.stream_name,
           "TRAFFIC_BUCKET": settings.bucket, "TRAFFIC_CHECKPOINT_TABLE": settings.checkpoint_table,
           "MLFLOW_TRACKING_URI": tracking_uri, "TRAFFIC_CONSUMER_METRICS_PORT": "0", **environ}
    command = [sys.executable, "-m", "consumer", "--no-tracking"] + (["--worker-id", worker_id] if worker_id else [])
    return subprocess.Popen(command, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)


class MemoryPeak:
    """Peak RSS, and the largest anonymous and file-backed parts seen, of the processes sampled.

    The peak is the kernel's own (``VmHWM``); the parts are sampled (``RssAnon``, ``RssFile``)
    each time :meth:`sample` is called. They are told apart because the file-backed part is
    clean pages of the libraries' code, and how many of those a process maps depends on the
    kernel: on this machine's ext4 (Linux 6.18, large folios) ``import pyarrow.parquet``
    maps 72 MB of them, and 23 MB from a copy of the same files on tmpfs. The anonymous part
    is what the process allocated, the same on any kernel.
    """

    def __init__(self) -> None:
        self.total = self.anonymous = self.files = 0.0

    def sample(self, pid: int) -> None:
        status = {}
        for line in open(f"/proc/{pid}/status"):
            name, _, value = line.partition(":")
            if name in ("VmHWM", "RssAnon", "RssFile"):
                status[name] = int(value.split()[0]) / 1024
        self.total = max(self.total, status["VmHWM"])
        self.anonymous = max(self.anonymous, status["RssAnon"])
        self.files = max(self.files, status["RssFile"])

    def __str__(self) -> str:
        return f"{self.total:.0f} MB (anonymous {self.anonymous:.0f}, files {self.files:.0f})"


def register_champion(model, tracking_uri: str) -> None:
    """Make ``model`` the registry's champion, so consumer processes serve it as in production."""
    from adapters import model_registry
    from core import features

    settings = settings_for(1).replace(tracking_uri=tracking_uri)
    model_registry.connect(settings)
    sample, _, _ = features.training_frame(synthetic(200, stations=1))
    version = model_registry.log_and_register(settings, model, sample, {}, {}, {"purpose": "benchmark"}, "bench")
    model_registry.promote(settings, version)


def bench_workers(records, shards: int, workers: int, workdir: Path, emulator_pid: int,
                  tracking_uri: str, memory: MemoryPeak) -> tuple[float, dict[str, float], float]:
    """Records/s of ``workers`` consumer processes sharing ``shards`` through leases, the
    cores each process used meanwhile (CPU seconds per wall second), and the workers' CPU
    seconds per 1,000 records (from /proc: the emulator's and the benchmark's own excluded);
    ``memory`` takes in the largest peaks among them: a consumer working through a backlog
    in full batches.

    The stream is filled first, so the producer is not what is measured, and the clock runs
    from the moment every worker holds a lease to the moment the last record is checkpointed
    (start-up and the first lease-taking are left out; what was done before is subtracted).
    """
    from adapters import aws
    from consumer import checkpoint_table
    from infra.provision import Provisioner
    from monitor.stream_contents import shard_records
    from producer.kinesis_writer import KinesisWriter
    from producer.run import replay

    settings = settings_for(shards)
    provisioner = Provisioner(settings)
    provisioner.create(with_iam=False)
    replay(records, KinesisWriter(aws.client("kinesis", settings), settings.stream_name), None, show_progress=False)
    # shard -> sequence number -> how many of the shard's records are up to it
    position = {shard: {r["SequenceNumber"]: i + 1 for i, r in enumerate(on_shard)}
                for shard, on_shard in shard_records(aws.client("kinesis", settings), settings.stream_name).items()}
    assert sum(len(p) for p in position.values()) == len(records)

    dynamodb = aws.client("dynamodb", settings)

    def progress() -> tuple[int, set[str]]:
        items = dynamodb.scan(TableName=settings.checkpoint_table, ConsistentRead=True)["Items"]
        done, owners = 0, set()
        for item in items:
            shard = checkpoint_table.shard_of(settings.app_name, item)
            if shard is None:
                continue
            committed = checkpoint_table.checkpoint(item).sequence_number
            if shard in position and committed:
                done += position[shard][committed]
            owner = checkpoint_table.lease(shard, item).owner
            if owner:
                owners.add(owner)
        return done, owners

    processes = [start_consumer(settings, tracking_uri, workdir / f"worker-{workers}-{i}.log", f"w{i}",
                                TRAFFIC_LEASE_SECONDS="3")
                 for i in range(workers)]
    pids = {**{f"worker {i}": p.pid for i, p in enumerate(processes)}, "moto": emulator_pid}
    try:
        deadline = time.monotonic() + 180
        while True:
            done_before, owners = progress()
            if len(owners) >= workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(owners)} of {workers} workers took a lease: see {workdir}")
            time.sleep(0.1)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        own_before = sum(os.times()[:2])
        started = time.perf_counter()
        while progress()[0] < len(records):
            if time.monotonic() > deadline + 600:
                raise RuntimeError(f"the workers did not finish: see {workdir}")
            for process in processes:
                memory.sample(process.pid)
            time.sleep(0.25)
        wall = time.perf_counter() - started
        used = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        shares = {name: seconds / wall for name, seconds in used.items()}
        shares["benchmark"] = (sum(os.times()[:2]) - own_before) / wall
        for process in processes:
            memory.sample(process.pid)
        measured = len(records) - done_before
        workers_cpu = sum(seconds for name, seconds in used.items() if name.startswith("worker"))
        return measured / wall, shares, 1000 * workers_cpu / measured
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        provisioner.delete()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000", help="record counts for the core and pipeline runs")
    parser.add_argument("--shards", default="1,4,16")
    parser.add_argument("--pipeline-max", type=int, default=50000, help="largest record count sent through moto")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--workers-records", type=int, default=100000, help="records for the workers runs")
    parser.add_argument("--workers", default="1,2,4", help="worker processes sharing the shards by lease")
    parser.add_argument("--workers-shards", type=int, default=8)
    parser.add_argument("--only-workers", action="store_true", help="run the workers axis alone")
    parser.add_argument("--call-sizes", default="500,2000,10000",
                        help="rows per batch-model call (and records per core batch) to compare")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    shard_counts = [int(s) for s in args.shards.split(",")]
    call_sizes = [int(s) for s in args.call_sizes.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    from infra.emulator import client_environment, free_port, start

    port = free_port()
    emulator = start(port, workdir / "moto.log")
    os.environ.update({**client_environment(port), "TRAFFIC_HOME": str(workdir)})
    from core.batch_model import serve_single_threaded
    from core.config import Settings

    # The consumer processes groups of up to TRAFFIC_BATCH_SIZE records in one call.
    settings = Settings.from_env()
    group, trees = settings.batch_size, settings.batch_trees

    serve_single_threaded()  # as the consumer process does
    lines = []
    stack = ExitStack()
    worker_counts = [int(w) for w in args.workers.split(",")]
    stages, latencies, rss, in_process_rss = {}, [], None, None
    try:
        records = synthetic(max(sizes)) if not args.only_workers else None
        model = fitted_model(trees)
        # The benchmark's own 200,000 records are long-lived: keep the garbage collector from
        # walking them during the timings (a full collection cost 0.7 s inside one stage).
        gc.collect()
        gc.freeze()
        lines.append("| stage | shards | records | records/s |")
        lines.append("|---|---:|---:|---:|")
        if not args.only_workers:
            stages = bench_stages(records[: min(sizes)], model, call_sizes, trees)
            print("\n".join(f"{name}: {us:.1f} us/record" for name, us in stages.items()), flush=True)
            for size in sizes:
                lines.append(f"| core (decode+features+batch+online), batches of {group:,} | - | {size:,} | "
                             f"{bench_core(records[:size], model, group):,.0f} |")
                print(lines[-1], flush=True)
            for other in (n for n in call_sizes if n != group):
                lines.append(f"| core (decode+features+batch+online), batches of {other:,} | - | {min(sizes):,} | "
                             f"{bench_core(records[:min(sizes)], model, other):,.0f} |")
                print(lines[-1], flush=True)
        # The consumer processes below serve this model from the registry, as in production.
        tracking_uri = stack.enter_context(tracking_server(workdir, os.environ["AWS_ENDPOINT_URL"]))
        register_champion(model, tracking_uri)
        if not args.only_workers:
            sqlite_uri = f"sqlite:///{workdir / 'mlflow.db'}"
            register_champion(model, sqlite_uri)
            in_process_rss = startup_rss(workdir, sqlite_uri)
            # Latency first, while the emulator is fresh: after the runs below moto has held
            # hundreds of thousands of records and its own pauses would be measured instead.
            latencies, rss = bench_latency(records, args.latency_seconds, 100.0, workdir, tracking_uri)
            for shards in shard_counts:
                for size in (s for s in sizes if s <= args.pipeline_max):
                    producer_rate, consumer_rate = bench_pipeline(records[:size], model, shards)
                    lines.append(f"| producer (PutRecords) | {shards} | {size:,} | {producer_rate:,.0f} |")
                    lines.append(f"| consumer end to end (moto) | {shards} | {size:,} | {consumer_rate:,.0f} |")
                    print("\n".join(lines[-2:]), flush=True)
        worker_rates, worker_cpu, worker_cost, worker_memory = {}, {}, {}, MemoryPeak()
        # 128 stations: Kinesis hashes partition keys to shards, and 32 keys land 2/9/10/11 on
        # 4 shards, so two workers would split the work 13/19 at best, whatever the leases do.
        spread = synthetic(args.workers_records, stations=128)
        for workers in worker_counts:
            worker_rates[workers], worker_cpu[workers], worker_cost[workers] = bench_workers(
                spread, args.workers_shards, workers, workdir, emulator.pid, tracking_uri, worker_memory)
            lines.append(f"| consumer processes sharing {args.workers_shards} shards by lease (128 stations) | "
                         f"{workers} worker(s) | {args.workers_records:,} | {worker_rates[workers]:,.0f} |")
            print(lines[-1], flush=True)
    finally:
        stack.close()
        emulator.terminate()
    print()
    print(describe())
    if stages:
        print("\ncore stages, each timed alone on the same records:\n")
        print("| stage | µs/record |\n|---|---:|")
        print("\n".join(f"| {name} | {us:.1f} |" for name, us in stages.items()))
    print()
    print("\n".join(lines))
    first = worker_counts[0]
    print(f"\nscaling by CPU accounting: {args.workers_records:,} records of 128 stations on {args.workers_shards} "
          "shards; the workers' own CPU seconds (user + system, /proc) per 1,000 records, the emulator's and the "
          f"benchmark's excluded; efficiency = cost({first}) / cost(N); wall-clock rates on {os.cpu_count()} cores "
          "shared with the emulator:\n")
    print("| workers | worker CPU s / 1,000 records | efficiency | records/s (wall) | wall ratio |")
    print("|---:|---:|---:|---:|---:|")
    for workers in worker_counts:
        print(f"| {workers} | {worker_cost[workers]:.3f} | {worker_cost[first] / worker_cost[workers]:.2f} | "
              f"{worker_rates[workers]:,.0f} | {worker_rates[workers] / worker_rates[first]:.2f}x |")
    names = list(worker_cpu[worker_counts[-1]])
    print(f"\ncores used during the workers runs (CPU seconds per wall second; the machine has {os.cpu_count()}):\n")
    print("| workers | " + " | ".join(names) + " | total |")
    print("|---|" + "---:|" * (len(names) + 1))
    for workers, shares in worker_cpu.items():
        print(f"| {workers} | " + " | ".join(f"{shares[name]:.2f}" if name in shares else "-" for name in names)
              + f" | {sum(shares.values()):.2f} |")
    if latencies:
        ms = sorted(x * 1000 for x in latencies)
        p50, p99 = statistics.median(ms), ms[int(0.99 * (len(ms) - 1))]
        print(f"\nlatency put -> prediction visible in S3 at 100 records/s over {len(ms):,} records: "
              f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms")
    print("consumer peak RSS (VmHWM), with the largest anonymous and file-backed parts sampled (RssAnon, RssFile):")
    if rss is not None:
        print(f"- {rss} over the latency run, with the registry behind an MLflow server (as docker-compose, the "
              "embedded stack and AWS run it)")
        print(f"- {in_process_rss} up to serving the champion with MLflow's SQLite store in the process "
              "(MLFLOW_TRACKING_URI=sqlite:///..., as in the tests)")
    print(f"- {worker_memory} working through a backlog in batches of "
          f"{group:,} (the workers runs, 128 stations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
