"""``python -m demo``: the whole pipeline, end to end.

Stops the consumer and the retrainer a previous demo left running; provisions a fresh stream,
buckets and table; trains the batch model on the hours before ``--train-end`` and makes it
champion; starts the consumer and the retrainer in the background (:mod:`infra.services`: they
keep running until ``make down``, as the services of ``docker compose`` do); replays
``--start``..``--end`` fast; waits until every produced hour is accounted for; then prints the
comparison of the two models, and how to watch, replay more and stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

from adapters import aws, model_registry
from core.config import Settings
from core.errors import TrafficStreamError
from infra import server_process, services
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
    except server_process.ServerError as exc:  # the consumer or the retrainer did not start
        print(f"the demo stopped: {exc}\n(`make down` stops whatever did start)", file=sys.stderr)
        return 1


def demo(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    data = ["--data", args.data] if args.data else []
    began = time.monotonic()

    for name, pid in services.stop(settings).items():  # they read the stream about to be replaced
        if pid is not None:
            print(f"stopped the {name} a previous demo left running (pid {pid})", flush=True)
    print("== provisioning a fresh stream, buckets, checkpoint table and IAM policies", flush=True)
    provisioner = Provisioner(settings)
    provisioner.delete()
    print(provisioner.create())
    print("\n== training the batch model on hours before", args.train_end, flush=True)
    run(["-m", "training", "train", "--train-end", args.train_end, *data])

    print("\n== starting the consumer and the retrainer in the background, until `make down`", flush=True)
    started = {s.service.name: s for s in services.start(settings)}
    for s in started.values():
        print(f"$ python {' '.join(s.service.args)} &   (pid {s.pid}, log {s.log_path})", flush=True)
    print(f"\n== replaying {args.start} .. {args.end} at speed {args.speed}", flush=True)
    run(["-m", "producer", "--start", args.start, "--end", args.end, "--speed", args.speed, *data])
    print("\n== waiting until every produced hour is predicted or dead-lettered", flush=True)
    run(["-m", "monitor", "reconcile", "--start", args.start, "--end", args.end, "--wait", str(args.wait), *data])
    for name, pid in services.running(settings).items():
        if pid is None:
            raise SystemExit(f"the {name} exited early; see {started[name].log_path}")
    print("\n== batch vs online over the replayed period", flush=True)
    run(["-m", "monitor", "compare"])
    retrainer = started[services.RETRAINER.name]
    lines = retrainer.log_path.read_bytes()[retrainer.log_offset:].decode(errors="replace").splitlines()
    promoted = sum(1 for line in lines if "promoted version" in line)
    checked = sum(1 for line in lines if "retrain at" in line)
    print(f"\nretraining: {checked} periodic retrains, {promoted} promoted to champion (log: {retrainer.log_path})")
    print(f"demo wall time: {time.monotonic() - began:.0f} s")
    model_registry.connect(settings)
    print("\nThe stack is up, and the consumer and the retrainer keep running in the background.")
    print("Watch rows land in the bucket:         make watch")
    print("Replay more, an event hour a second:   make replay SPEED=3600")
    print("  (from the hour after the last one replayed; SPEED=1 is real time, START=/END= choose the hours)")
    print(f"Open MLflow (runs, registry, metrics): {model_registry.experiment_page(settings)}")
    print("Stop everything:                       make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
