"""``python -m consumer``: read the stream, predict with both models, write results to S3.

Stops gracefully on SIGTERM or SIGINT (finishes and checkpoints the batch in hand), or
after ``--idle-exit`` seconds without records.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from consumer.allocators import prefer_system_allocator_for_arrow, use_lean_allocators

prefer_system_allocator_for_arrow()  # before pyarrow loads, with pandas and MLflow below

from adapters import aws, metrics, model_registry  # noqa: E402
from adapters.result_store import ResultStore  # noqa: E402
from consumer.checkpoints import CheckpointStore  # noqa: E402
from consumer.leases import LeaseCoordinator, new_worker_id  # noqa: E402
from consumer.streaming_run import StreamingRun  # noqa: E402
from consumer.worker import Consumer  # noqa: E402
from core.batch_model import serve_single_threaded  # noqa: E402
from core.config import Settings  # noqa: E402


def build(settings: Settings, track: bool = True, worker_id: str | None = None) -> Consumer:
    s3, dynamodb = aws.clients(settings, "s3", "dynamodb")
    model_registry.connect(settings)
    champion = model_registry.Champion(settings)
    return Consumer(
        settings,
        aws.stream_reader(settings),
        ResultStore(s3, settings.bucket),
        CheckpointStore(dynamodb, s3, settings.checkpoint_table, settings.bucket, settings.app_name),
        champion,
        StreamingRun(settings) if track else None,
        LeaseCoordinator(dynamodb, settings.checkpoint_table, settings.app_name, worker_id or new_worker_id(),
                         settings.lease_seconds),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--idle-exit", type=float, default=None, help="stop after this many seconds without records")
    parser.add_argument("--no-tracking", action="store_true", help="do not log a streaming run to MLflow")
    parser.add_argument("--worker-id", default=None, help="this worker's name in the lease table (default host-pid-random)")
    return parser


@aws.stops_on_permanent("consumer")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    metrics.serve(settings, "consumer")
    use_lean_allocators()
    serve_single_threaded()
    worker_id = args.worker_id or new_worker_id()
    consumer = build(settings, track=not args.no_tracking, worker_id=worker_id)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Past its start (MLflow reached, clients built): infra.services waits for this line.
    logging.getLogger("consumer").info("consuming stream %s as worker %s", settings.stream_name, worker_id)
    stats = consumer.run(stop, args.idle_exit)
    logging.getLogger("consumer").info(
        "stopped: %d records, %d results, %d dead letters, %d batches, %d failed batches",
        stats.records, stats.rows, stats.dead_letters, stats.batches, stats.failures,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
