"""``python -m producer``: replay the dataset into the Kinesis stream.

Examples::

    python -m producer --start 2017-01-01 --end 2018-09-30 --speed max
    python -m producer --start 2018-01-01 --speed 1            # real time, one record an hour
    python -m producer --start 2017-01-01 --speed 3600 --resume  # an hour a second, continue after a stop
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, time

from adapters import aws, metrics
from core import dataset
from core.config import Settings
from producer.kinesis_writer import KinesisWriter
from producer.replay import parse_speed
from producer.run import Progress, after, replay


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    settings = settings or Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m producer", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="path of the dataset CSV (default: TRAFFIC_DATA, then the cache, then UCI)")
    parser.add_argument("--start", type=datetime.fromisoformat, help="first local hour to replay (ISO date)")
    parser.add_argument("--end", type=datetime.fromisoformat, help="last local hour to replay (inclusive)")
    parser.add_argument("--speed", default=settings.replay_speed, help="1 = real time, N = N times faster, max")
    parser.add_argument("--max-gap-hours", type=float, default=1.0, help="longest wait for a gap in the data, in event hours")
    parser.add_argument("--resume", action="store_true", help="continue after the last hour this producer put")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    return parser


@aws.stops_on_permanent("producer")
def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics.serve(settings, "producer")

    # A bare date as --end means the whole of that day.
    end = args.end.replace(hour=23) if args.end and args.end.time() == time(0) else args.end
    try:
        records = dataset.load_records(args.data, settings.data_path, settings.cache_dir, settings.station_id, args.start, end)
    except dataset.DataUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    progress = Progress(settings.home / f"producer-{settings.stream_name}.json")
    if args.resume:
        records = after(records, progress.last_event_id())
    writer = KinesisWriter(aws.client("kinesis", settings), settings.stream_name)
    summary = replay(records, writer, parse_speed(args.speed), progress, args.max_gap_hours, not args.no_progress)
    print(summary.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
