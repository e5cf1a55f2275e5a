"""``python -m demo`` as a user runs it, when a step cannot succeed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_a_failed_step_ends_the_demo_with_that_steps_message_and_exit_code(settings, tmp_path):
    missing = tmp_path / "nowhere" / "Metro_Interstate_Traffic_Volume.csv.gz"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAFFIC_DATA": str(missing)}
    done = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]  # the training step's code: its data is not there
    assert "Traceback" not in done.stderr
    assert "$ -m training train" in done.stdout
    assert done.stderr.strip().splitlines()[-1].endswith(f"{missing}, which is not a file.")
