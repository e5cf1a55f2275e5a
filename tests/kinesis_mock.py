"""kinesis-mock (npm ``kinesis-local``), bound to 127.0.0.1, for the Kinesis semantics moto lacks.

Installed with ``npm ci`` from ``tools/kinesis-mock`` (pinned by its package-lock). Its
server binds every interface with no setting to change it, so it is started from a copy of
its entry point whose listen address is rewritten to the loopback interface.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from infra import server_process
from tests.conftest import ROOT, free_port

TOOL = ROOT / "tools" / "kinesis-mock"
PACKAGE = TOOL / "node_modules" / "kinesis-local"


def install() -> Path:
    if not (PACKAGE / "main.js").is_file():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True, capture_output=True)
    return PACKAGE


def loopback_copy(workdir: Path) -> Path:
    """A copy of the server whose listen address is 127.0.0.1 instead of 0.0.0.0."""
    source = (install() / "main.js").read_text()
    marker = 'em("0.0.0.0")'
    if source.count(marker) != 1:
        raise RuntimeError("kinesis-mock changed: its listen address is no longer where expected")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.js").write_text(source.replace(marker, 'em("127.0.0.1")'))
    shutil.copy(PACKAGE / "server.json", workdir / "server.json")
    return workdir / "main.js"


@contextmanager
def kinesis_mock(workdir: Path):
    main = loopback_copy(workdir)
    plain, tls = free_port(), free_port()
    env = {**os.environ, "KINESIS_MOCK_PLAIN_PORT": str(plain), "KINESIS_MOCK_TLS_PORT": str(tls),
           "CREATE_STREAM_DURATION": "200ms", "SPLIT_SHARD_DURATION": "200ms", "MERGE_SHARDS_DURATION": "200ms",
           "LOG_LEVEL": "WARN", "SHOULD_PERSIST_DATA": "false"}
    process = server_process.start(["node", str(main)], workdir / "kinesis-mock.log", cwd=workdir, env=env,
                                   ready=lambda: server_process.port_open(plain), timeout=60, name="kinesis-mock")
    try:
        yield f"http://127.0.0.1:{plain}"
    finally:
        server_process.stop(process, 10)
