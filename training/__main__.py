"""``python -m training train|retrain``: the first fit, and periodic retraining.

    python -m training train --train-end 2017-01-01     # fit, log, register, make champion
    python -m training retrain --follow                  # every TRAFFIC_RETRAIN_EVERY_DAYS of event time
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime

from adapters import aws, metrics, model_registry
from adapters.result_store import ResultStore
from core import dataset
from core.config import Settings
from monitor.compaction import compactor
from training.jobs import Retrainer, train_initial


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="fit on the dataset before --train-end and make it champion")
    train.add_argument("--data", help="path of the dataset CSV (default: TRAFFIC_DATA, then the cache, then UCI)")
    train.add_argument("--train-start", type=datetime.fromisoformat, default=None)
    train.add_argument("--train-end", type=datetime.fromisoformat, default=datetime(2017, 1, 1))
    train.add_argument("--no-history", action="store_true", help="do not seed the bucket with the training rows")
    serve = sub.add_parser("serve", help="train the first champion if there is none, then retrain periodically")
    serve.add_argument("--train-end", type=datetime.fromisoformat, default=datetime(2017, 1, 1))
    serve.add_argument("--poll-seconds", type=float, default=10.0)
    retrain = sub.add_parser("retrain", help="retrain on everything the stream has seen, periodically")
    retrain.add_argument("--follow", action="store_true", help="keep watching the bucket (else: one check)")
    retrain.add_argument("--poll-seconds", type=float, default=5.0)
    return parser


@aws.stops_on_permanent("training")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    store = ResultStore(aws.client("s3", settings), settings.bucket)

    if args.action == "train":
        try:
            version = train_initial(settings, None if args.no_history else store, args.data, args.train_end, args.train_start)
        except dataset.DataUnavailable as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"registered {settings.model_name} version {version} as champion")
        return 0

    if args.action == "serve" or args.follow:
        metrics.serve(settings, "trainer")  # before training: a taken port stops it at once
    if args.action == "serve":
        model_registry.connect(settings)
        if model_registry.champion_version(settings) is None:
            try:
                train_initial(settings, store, None, args.train_end)
            except dataset.DataUnavailable as exc:
                print(exc, file=sys.stderr)
                return 2
        args.follow = True

    retrainer = Retrainer(settings, store, compactor=compactor(settings, store))
    if not args.follow:
        outcome = retrainer.step()
        print(outcome or "no retraining due")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Past its start (MLflow reached, a champion found): infra.services waits for this line.
    logging.getLogger("training").info("retraining every %g event days; checking the bucket every %g s",
                                       settings.retrain_every_days, args.poll_seconds)
    retrainer.follow(args.poll_seconds, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
