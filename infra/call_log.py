"""Record every AWS call a process makes, as the IAM action it needs: what its policy must allow.

Works for any Python process, the project's components and the MLflow server alike,
without changing them: botocore loads client plugins named in
``BOTOCORE_EXPERIMENTAL__PLUGINS`` into every client it creates, and this module is one::

    BOTOCORE_EXPERIMENTAL__PLUGINS=calllog=infra.call_log TRAFFIC_AWS_CALL_LOG=/tmp/consumer.calls \\
        python -m consumer

Each call appends one JSON line (the IAM action, the region and the parameters that name
its resource) to ``TRAFFIC_AWS_CALL_LOG``; ``python -m infra audit --call-log FILE --component
NAME`` compares a log with that component's policy as ``infra create`` installs it. The project's least-privilege test runs every component this way.
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
from dataclasses import dataclass
from pathlib import Path

from adapters.iam_actions import UNAUTHORIZED, iam_action, resource_params
from core.config import Settings
from infra.policies import allowed_actions

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
             "resource": resource_params(params)}
    os.write(_files[path], (json.dumps(entry) + "\n").encode())  # one write per line: whole lines from every thread


def read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def used_actions(entries: Iterable[dict]) -> set[str]:
    """The actions the calls needed (those no policy governs left out)."""
    return {e["action"] for e in entries} - UNAUTHORIZED


@dataclass(frozen=True)
class Audit:
    """A component's calls held against its policy: equal sets, or what is missing or unused."""

    allowed: frozenset[str]
    used: frozenset[str]

    @property
    def missing(self) -> set[str]:
        return set(self.used - self.allowed)

    @property
    def unused(self) -> set[str]:
        return set(self.allowed - self.used)

    @property
    def exact(self) -> bool:
        return self.allowed == self.used

    def table(self) -> str:
        rows = [("allowed", self.allowed), ("used", self.used), ("missing", self.missing), ("unused", self.unused)]
        return "\n".join(f"{name:<9}{', '.join(sorted(actions)) or '-'}" for name, actions in rows)


def audit(entries: Iterable[dict], document: dict, without_sids: tuple[str, ...] = ()) -> Audit:
    """Compare the calls of ``entries`` with the actions ``document`` allows (less ``without_sids``).

    >>> policy = {"Statement": [{"Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["*"]}]}
    >>> result = audit([{"action": "s3:GetObject", "region": "r", "resource": {}}], policy)
    >>> result.exact, result.unused
    (False, {'s3:ListBucket'})
    """
    return Audit(frozenset(allowed_actions(document, without_sids)), frozenset(used_actions(entries)))
