"""``python -m serve``: the prediction API on ``TRAFFIC_API_ADDRESS:TRAFFIC_API_PORT``.

    curl localhost:8000/health
    curl localhost:8000/stations/301/forecast
    curl -X POST localhost:8000/predict -d @record.json
    curl localhost:8000/stations/301/explain

OpenAPI docs at ``/docs``, Prometheus metrics at ``/metrics``. The committed state and the
registry's champion are read before the port opens: a denied permission or a missing table
ends the process there with one line (exit code 2), as a taken port does.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys

from consumer.allocators import prefer_system_allocator_for_arrow, use_lean_allocators

prefer_system_allocator_for_arrow()  # before pyarrow loads, with pandas and MLflow below: as the consumer

from adapters import aws, metrics, model_registry  # noqa: E402
from adapters.committed_state import CommittedStates  # noqa: E402
from core.batch_model import serve_single_threaded  # noqa: E402
from core.config import Settings  # noqa: E402
from core.errors import PermanentError  # noqa: E402


def bind(address: str, port: int) -> socket.socket:
    """A listening socket on ``address:port`` (0: any free port); a taken port is a :class:`PermanentError`."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PermanentError(f"the API port {address}:{port} is taken (another API?): set TRAFFIC_API_PORT "
                                 "to a free port, or 0 for any") from None
        raise PermanentError(f"cannot listen on {address}:{port} (TRAFFIC_API_ADDRESS, TRAFFIC_API_PORT): {exc}") from None
    sock.listen(2048)
    return sock


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="python -m serve", description=__doc__.splitlines()[0])


@aws.stops_on_permanent("api")
def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from serve.app import create_app

    settings = Settings.from_env()
    serve_single_threaded()  # one process answers; the trees' threads would only compete with it
    use_lean_allocators()  # the request threads would each get a glibc arena of their own
    dynamodb, s3 = aws.clients(settings, "dynamodb", "s3")
    model_registry.connect(settings)
    states = CommittedStates(dynamodb, s3, settings.checkpoint_table, settings.bucket, settings.app_name)
    app = create_app(states, model_registry.Champion(settings), metrics.api(), settings.api_refresh_seconds)
    app.state.refresh()
    sock = bind(settings.api_address, settings.api_port)
    host, port = sock.getsockname()[:2]
    logging.getLogger("serve").info("serving %d stations, champion %s, on http://%s:%d (docs: /docs)",
                                    len(states.stations), app.state.champion_version(), host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
