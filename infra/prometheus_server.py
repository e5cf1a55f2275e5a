"""A native Prometheus (the Debian ``prometheus`` binary) scraping the components, for tests and for use without Docker.

``python -m infra.prometheus_server`` (``make prometheus``) scrapes the producer, consumer and
trainer on 127.0.0.1 at the ports ``TRAFFIC_<COMPONENT>_METRICS_PORT`` give, every
``TRAFFIC_SCRAPE_SECONDS``, keeps its samples under ``TRAFFIC_HOME/prometheus`` and serves its
UI and API on http://127.0.0.1:9090 until stopped (Ctrl-C). Its jobs are named for the
components, as in ``dashboards/prometheus.yml``, so the dashboard's queries run on either.

>>> config = scrape_config({"consumer": "127.0.0.1:9102"}, 1.5)
>>> config["global"]["scrape_interval"], config["scrape_configs"]
('1500ms', [{'job_name': 'consumer', 'static_configs': [{'targets': ['127.0.0.1:9102']}]}])
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from core.config import METRICS_COMPONENTS, Settings
from core.errors import PermanentError, exit_on
from infra import server_process

DEFAULT_PORT = 9090
#: Prometheus's own limit on a scrape, which must not exceed the interval.
MAX_SCRAPE_TIMEOUT = 10.0


def binary() -> str:
    """The path of the ``prometheus`` binary; :class:`PermanentError` saying how to install it when there is none."""
    found = shutil.which("prometheus")
    if found is None:
        raise PermanentError("the prometheus binary is not installed: `apt-get install prometheus` (Debian, Ubuntu), "
                             "or put the one from https://prometheus.io/download/ on the PATH")
    return found


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds as ``15s``, anything finer in milliseconds (it takes no fractions)."""
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def scrape_config(targets: Mapping[str, str], interval: float) -> dict:
    """A configuration scraping each job's ``host:port`` every ``interval`` seconds."""
    return {
        "global": {"scrape_interval": duration(interval), "scrape_timeout": duration(min(interval, MAX_SCRAPE_TIMEOUT)),
                   "evaluation_interval": duration(interval)},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                           for job, target in targets.items()],
    }


def component_targets(settings: Settings) -> dict[str, str]:
    """Each component's metrics endpoint on this machine, by the port its settings give."""
    return {component: f"127.0.0.1:{settings.metrics_ports[component]}" for component in METRICS_COMPONENTS}


def start(targets: Mapping[str, str], folder: Path, port: int, interval: float,
          timeout: float = 30.0) -> subprocess.Popen:
    """Prometheus on 127.0.0.1:``port`` scraping ``targets``, its configuration, samples and log in
    ``folder``; returned once ``/-/ready`` answers."""
    command = binary()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, interval), sort_keys=False))
    return server_process.start(
        [command, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        folder / "prometheus.log", ready=lambda: server_process.http_ok(f"http://127.0.0.1:{port}/-/ready"),
        timeout=timeout, name=f"Prometheus on port {port}",
    )


def stop(process: subprocess.Popen) -> bool:
    return server_process.stop(process, 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.prometheus_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port of Prometheus's UI and API")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    folder = settings.home / "prometheus"
    targets = component_targets(settings)
    if not server_process.port_free(args.port):
        print(f"Prometheus did not start: 127.0.0.1:{args.port} is taken (another Prometheus?): choose --port",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: Prometheus with it
    try:
        process = start(targets, folder, args.port, settings.scrape_seconds)
    except PermanentError as exc:
        return exit_on("prometheus", exc)
    except server_process.ServerError as exc:  # the port taken, a configuration it refused
        print(f"Prometheus did not start: {exc}", file=sys.stderr)
        return 1
    print(f"Prometheus on http://127.0.0.1:{args.port} scraping {', '.join(f'{j} {t}' for j, t in targets.items())} "
          f"every {settings.scrape_seconds:g} s (log {folder / 'prometheus.log'}); Ctrl-C stops it")
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main())
