"""What machine a benchmark ran on, for the header of its table."""

from __future__ import annotations

import os
import platform
import subprocess


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        memory = float("nan")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return (f"machine: {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, commit {commit or '?'}")
