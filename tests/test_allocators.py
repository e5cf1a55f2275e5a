"""The consumer process starts on allocators that give freed memory back (consumer/allocators.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = "import {module}, pyarrow; print(pyarrow.default_memory_pool().backend_name)"


def _backend(module: str = "consumer.__main__", **environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | environ
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("entry_point", ["consumer.__main__", "consumer.lambda_handler"])
def test_the_consumer_entry_points_put_arrow_on_the_system_allocator(entry_point):
    assert _backend(entry_point) == "system"


def test_a_pool_chosen_in_the_environment_is_kept():
    assert _backend(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_accepts_the_arena_limit(caplog):
    import pyarrow

    from consumer.allocators import use_lean_allocators

    on_system = pyarrow.default_memory_pool().backend_name == "system"
    with caplog.at_level("INFO", logger="consumer.allocators"):
        use_lean_allocators()
    assert not any("arenas left" in r.message for r in caplog.records)  # mallopt returned 1
    # Unless this process loaded pyarrow after the variable was set, the warning says so.
    assert any("ARROW_DEFAULT_MEMORY_POOL=system" in r.message for r in caplog.records) != on_system
