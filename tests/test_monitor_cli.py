"""``python -m monitor`` with nothing to talk to: a clear message and an exit code, not a traceback."""

from __future__ import annotations

import pytest

from monitor.__main__ import main
from tests.conftest import free_port


@pytest.mark.parametrize("action", ["compare", "reconcile"])
def test_an_unreachable_endpoint_is_named_with_what_to_do(action, monkeypatch, tmp_path, capsys, synthetic_csv):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("TRAFFIC_HOME", str(tmp_path))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("TRAFFIC_DATA", str(synthetic_csv))
    assert main([action]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach AWS at {endpoint}" in err and "make up" in err


def test_reconciling_without_the_dataset_says_how_to_provide_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TRAFFIC_HOME", str(tmp_path))
    monkeypatch.setenv("TRAFFIC_DATA", str(tmp_path / "absent.csv.gz"))
    assert main(["reconcile", "--wait", "0"]) == 2
    assert "TRAFFIC_DATA" in capsys.readouterr().err
