"""The project's exceptions: one base, and the kinds a caller must tell apart.

A :class:`PermanentError` can never succeed by trying again (access denied, invalid
credentials, a stream, table or bucket that does not exist): a component that meets one
stops with exit code :data:`PERMANENT_EXIT_CODE` and the error's one-line message,
instead of retrying forever. Everything else that goes wrong talking to a service
(throttling, 5xx, a dropped connection) is transient and retried where it happens.

>>> error = PermanentError("the stream 's' does not exist: run `python -m infra create`")
>>> isinstance(error, TrafficStreamError), str(error)
(True, "the stream 's' does not exist: run `python -m infra create`")
"""

from __future__ import annotations

import sys

#: The exit code of a component stopped by a permanent error (argparse uses 2 for bad usage too).
PERMANENT_EXIT_CODE = 2


class TrafficStreamError(Exception):
    """Base of every error this project raises on purpose."""


class PermanentError(TrafficStreamError):
    """An error that no retry can cure; its message is one line saying what to do."""


class StateSnapshotError(TrafficStreamError, ValueError):
    """A state blob that cannot be loaded: corrupt, tampered with, of an unknown version, or a
    pickle of the format before snapshots. Permanent for that shard (reading it again gives
    the same), which stops while the others go on: not a :class:`PermanentError` of the process."""


class LegacyStateError(StateSnapshotError):
    """A pickled state, as stored before snapshots: ``python -m infra migrate-state`` rewrites it."""


class ManifestError(TrafficStreamError, ValueError):
    """A prediction month's compaction manifest that cannot be read: which of its files hold
    the rows is unknown, so the month is not read rather than read twice or in part."""


def exit_on(component: str, error: PermanentError) -> int:
    """Print ``error`` as the component's one last line (stderr) and return the exit code.

    >>> exit_on("producer", PermanentError("denied")) == PERMANENT_EXIT_CODE
    True
    """
    print(f"{component}: {error}", file=sys.stderr, flush=True)
    return PERMANENT_EXIT_CODE
