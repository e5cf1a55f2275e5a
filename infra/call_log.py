"""Record every AWS call a process makes, as the IAM action it needs: what its policy must allow.

Works for any Python process, the project's components and the MLflow server alike,
without changing them: botocore loads client plugins named in
``BOTOCORE_EXPERIMENTAL__PLUGINS`` into every client it creates, and this module is one::

    BOTOCORE_EXPERIMENTAL__PLUGINS=calllog=infra.call_log TRAFFIC_AWS_CALL_LOG=/tmp/consumer.calls \\
        python -m consumer

Each call appends one JSON line (the IAM action, the region and the parameters that name
its resource) to ``TRAFFIC_AWS_CALL_LOG``; ``python -m infra audit`` compares a log with a
component's policy. The project's least-privilege test runs every component this way.
botocore marks its plugin hook experimental: the lock pins botocore, and that test fails
loudly if the hook stops being called.

>>> entry = {"action": "kinesis:PutRecords", "region": "us-east-1", "resource": {"StreamName": "s"}}
>>> used_actions([entry])
{'kinesis:PutRecords'}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from adapters.aws import RESOURCE_PARAMS
from adapters.iam_actions import UNAUTHORIZED, iam_action
from core.config import Settings

#: Each log's file descriptor, opened at the first call.
_files: dict[str, int] = {}


def initialize_client_plugin(client) -> None:
    """botocore's plugin entry point: called with every client the process creates."""
    path = Settings.from_env().aws_call_log
    if path:
        client.meta.events.register("before-parameter-build", lambda params, model, **_: _append(path, client, params, model))


def _append(path: str, client, params: dict, model) -> None:
    if path not in _files:
        _files[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    entry = {"action": iam_action(model.service_model.signing_name, model.name), "region": client.meta.region_name,
             "resource": {k: params[k] for k in RESOURCE_PARAMS if k in params}}
    os.write(_files[path], (json.dumps(entry) + "\n").encode())  # one write per line: whole lines from every thread


def read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def used_actions(entries: Iterable[dict]) -> set[str]:
    """The actions the calls needed (those no policy governs left out)."""
    return {e["action"] for e in entries} - UNAUTHORIZED
