"""How a long-running consumer process allocates memory: fewer freed pages kept in reserve.

Two allocators hold on to memory the consumer has freed. Arrow's default pool (mimalloc,
used for every Parquet result and every DataFrame with text columns) keeps freed pages
for reuse, and glibc gives each thread that allocates (the background reads and writes)
an arena of its own. Measured with ``bench/throughput``'s workers run (one consumer
working through a 50,000-record backlog, 128 stations on 4 shards, batches of 2,000),
peak RSS and records/s, one run each:

============================================  ==========  ==========
allocators                                    peak RSS    records/s
============================================  ==========  ==========
defaults                                      440 MB      4,410
Arrow on the system allocator                 405 MB      4,288
... and glibc limited to two arenas (these)   394 MB      4,207
============================================  ==========  ==========

Alternating runs of mimalloc and the system allocator for Arrow (both with two arenas):
431 and 446 MB against 394 and 394 MB; 4,002 and 4,076 records/s against 4,056 and 3,805,
within the noise of runs on this machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: Arrow reads this when it loads, so the entry point sets it before importing anything that
#: imports pyarrow (pandas does); ``pyarrow.set_memory_pool`` later leaves Arrow's C++ code,
#: the Parquet writer among it, on the default pool (measured: 418 MB instead of 394).
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
