"""How a long-running consumer process allocates memory: fewer freed pages kept in reserve.

Two allocators hold on to memory the consumer has freed. Arrow's default pool (mimalloc,
used for every Parquet result and every DataFrame with text columns) keeps freed pages
for reuse, and glibc gives each thread that allocates (the background reads and writes)
an arena of its own. Arrow on the system allocator and at most two glibc arenas lower the
consumer's peak RSS through a backlog, with records/s within the noise between runs; the
measurements are in ``docs/benchmarks.md`` (Memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: Arrow reads this when it loads, so the entry point sets it before importing anything that
#: imports pyarrow (pandas does); ``pyarrow.set_memory_pool`` later leaves Arrow's C++ code,
#: the Parquet writer among it, on the default pool (measured: docs/benchmarks.md).
ARROW_POOL_VARIABLE, ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL", "system"
#: ``mallopt`` parameter number of ``M_ARENA_MAX`` in glibc's malloc.h.
_M_ARENA_MAX = -8


def use_lean_allocators(arenas: int = 2) -> None:
    """At most ``arenas`` glibc arenas for threads made from now on, and a warning if Arrow
    loaded on another pool than :data:`ARROW_POOL`.

    Call at start-up, before the worker's threads exist. Elsewhere than glibc (macOS,
    musl) the arena limit is skipped.
    """
    import pyarrow  # here, not at the top: this module is imported before pyarrow may load

    backend = pyarrow.default_memory_pool().backend_name
    if backend != ARROW_POOL:
        log.warning("Arrow allocates with %s, which keeps freed memory: set %s=%s before it loads",
                    backend, ARROW_POOL_VARIABLE, ARROW_POOL)
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None or mallopt(_M_ARENA_MAX, arenas) != 1:
        log.info("malloc arenas left as they are (not glibc)")


def prefer_system_allocator_for_arrow() -> None:
    """Set :data:`ARROW_POOL_VARIABLE` unless the environment already chose a pool."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, ARROW_POOL)
