"""``python -m demo``: the whole pipeline, end to end.

Provisions a fresh stream, buckets and table; trains the batch model on the hours before
``--train-end`` and makes it champion; starts the consumer and the retrainer as their own
processes (as ``docker compose`` does); replays ``--start``..``--end`` fast; waits until
every produced hour is accounted for; then prints the comparison of the two models.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from adapters import aws
from core.config import Settings
from core.errors import TrafficStreamError
from infra.provision import Provisioner

log = logging.getLogger("demo")


class StepFailed(TrafficStreamError):
    """A step of the demo exited with an error; it has printed its own message."""

    def __init__(self, cmd: list[str], code: int) -> None:
        super().__init__(f"`python {' '.join(cmd)}` exited with code {code}")
        self.code = code


def run(cmd: list[str], **kwargs) -> None:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    code = subprocess.run([sys.executable, *cmd], **kwargs).returncode
    if code != 0:
        raise StepFailed(cmd, code)


def start(cmd: list[str], log_path: Path, threads: int | None = None) -> subprocess.Popen:
    print(f"\n$ {' '.join(cmd)} &   (log: {log_path})", flush=True)
    env = dict(os.environ)
    if threads is not None:
        # OpenMP spinning on every core starves the consumer on a small machine.
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen([sys.executable, *cmd], stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)


def stop(process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", name, timeout)
            process.kill()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--train-end", default="2017-01-01")
    parser.add_argument("--start", default="2017-01-01")
    parser.add_argument("--end", default="2018-09-30")
    parser.add_argument("--speed", default=os.environ.get("DEMO_SPEED", "180000"), help="replay speed (180000 = 50 event hours a second)")
    parser.add_argument("--wait", type=float, default=1800, help="longest wait for the consumer to catch up, in seconds")
    return parser


@aws.stops_on_permanent("demo")
def main(argv: list[str] | None = None) -> int:
    """Run the demo; a failed step ends it with that step's exit code, after the step's own message."""
    try:
        return demo(argv)
    except StepFailed as failed:
        return failed.code


def demo(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data = ["--data", args.data] if args.data else []
    began = time.monotonic()

    print("== provisioning a fresh stream, buckets, checkpoint table and IAM policies", flush=True)
    provisioner = Provisioner(settings)
    provisioner.delete()
    print(provisioner.create())
    print("\n== training the batch model on hours before", args.train_end, flush=True)
    run(["-m", "training", "train", "--train-end", args.train_end, *data])

    consumer = start(["-m", "consumer"], logs / "consumer.log")
    retrainer = start(["-m", "training", "retrain", "--follow", "--poll-seconds", "2"], logs / "retrainer.log",
                      threads=1 if (os.cpu_count() or 1) <= 2 else None)
    try:
        print(f"\n== replaying {args.start} .. {args.end} at speed {args.speed}", flush=True)
        run(["-m", "producer", "--start", args.start, "--end", args.end, "--speed", args.speed, *data])
        print("\n== waiting until every produced hour is predicted or dead-lettered", flush=True)
        run(["-m", "monitor", "reconcile", "--start", args.start, "--end", args.end, "--wait", str(args.wait), *data])
        for process, name in ((consumer, "consumer"), (retrainer, "retrainer")):
            if process.poll() is not None:
                raise SystemExit(f"the {name} exited early (code {process.returncode}); see {logs / (name + '.log')}")
    finally:
        stop(consumer, "consumer")
        stop(retrainer, "retrainer")
    print("\n== batch vs online over the replayed period", flush=True)
    run(["-m", "monitor", "compare"])
    promoted = sum(1 for line in (logs / "retrainer.log").read_text().splitlines() if "promoted version" in line)
    checked = sum(1 for line in (logs / "retrainer.log").read_text().splitlines() if "retrain at" in line)
    print(f"\nretraining: {checked} periodic retrains, {promoted} promoted to champion (log: {logs / 'retrainer.log'})")
    print(f"demo wall time: {time.monotonic() - began:.0f} s")
    print("\nThe stack is still up. Watch the bucket:  make watch")
    print(f"Open MLflow (runs, registry, metrics):   {settings.tracking_uri}")
    print("Stop everything:                         make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
