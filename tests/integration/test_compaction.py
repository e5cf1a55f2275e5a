"""``python -m monitor compact`` against moto while readers read: no hour twice, none missing.

The consumer writes two months of hours in small batches (many objects a month). Then
``monitor compact`` runs as a process, twice (the second collects what the first replaced,
after a grace period), while two readers loop: the project's own (:meth:`ResultStore.read_predictions`,
which the retrainer, compare and reconcile use) and Athena's view through the catalog
(each partition's location, every object under it). A late hour for the compacted month
arrives between the two runs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from adapters import aws
from adapters.catalog import Catalog
from adapters.result_store import COMPACTED_PREFIX, PREDICTIONS_PREFIX
from infra.provision import Provisioner
from tests.integration import helpers

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GRACE_SECONDS = 3.0


def compact(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRAFFIC_COMPACT_GRACE_SECONDS": str(GRACE_SECONDS), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "monitor", "compact", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def catalog_view(settings, s3) -> Counter:
    """What Athena reads: for each partition the catalog names, every object under its location."""
    glue = aws.client("glue", settings)
    seen: Counter = Counter()
    for location in Catalog(glue, settings.glue_database, settings.glue_table, settings.bucket).locations().values():
        prefix = location.removeprefix(f"s3://{settings.bucket}/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
                seen.update(pq.read_table(io.BytesIO(body), columns=["event_id"]).column("event_id").to_pylist())
    return seen


def test_readers_see_every_hour_once_while_closed_months_are_compacted(settings, synthetic_records):
    settings = replace(settings, batch_size=40)
    Provisioner(settings).create(with_iam=False)
    january = [r for r in synthetic_records if r.local_time.strftime("%Y-%m") == "2015-01"]
    february = [r for r in synthetic_records if r.local_time.strftime("%Y-%m") == "2015-02"][:200]
    late = january.pop(300)  # an hour of January that arrives after January is compacted
    helpers.produce(settings, january + february)
    consumer = helpers.consumer(settings, champion=False)
    helpers.drain(consumer, len(january) + len(february))
    store, s3 = helpers.store(settings), aws.client("s3", settings)
    expected = {r.event_id for r in january + february}
    assert set(store.read_predictions()["event_id"]) == expected
    live_before = len(store.live_objects()["2015-01"])
    assert live_before >= 15  # many small objects, one a batch

    stop, failures, reads = threading.Event(), [], Counter()
    late_written = threading.Event()

    def read_ours():
        while not stop.is_set():
            ids = store.read_predictions()["event_id"].tolist()
            want = expected | {late.event_id} if late_written.is_set() else expected
            counts = Counter(ids)
            if set(counts) - {late.event_id} != want - {late.event_id} or max(counts.values()) > 1:
                failures.append(("ours", len(ids), sorted(want - set(counts))[:3], counts.most_common(1)))
            reads["ours"] += 1

    def read_athena():
        while not stop.is_set():
            counts = catalog_view(settings, s3)
            if counts and (set(counts) - {late.event_id} != expected or max(counts.values()) > 1):
                failures.append(("catalog", sum(counts.values()), sorted(expected - set(counts))[:3],
                                 counts.most_common(1)))
            reads["catalog"] += 1 if counts else 0

    readers = [threading.Thread(target=read_ours), threading.Thread(target=read_athena)]
    for thread in readers:
        thread.start()
    try:
        helpers.wait_until(lambda: reads["ours"] >= 2, 60, 0.05, "the readers to start")
        first = compact()
        assert first.returncode == 0, first.stderr[-3000:]
        assert "2015-01:" in first.stdout and "2015-02:" not in first.stdout, first.stdout  # February is open
        helpers.produce(settings, [late])
        helpers.drain(consumer, len(january) + len(february) + 1)
        late_written.set()
        reads_then = reads["ours"]
        helpers.wait_until(lambda: reads["ours"] >= reads_then + 2, 120, 0.05, "reads across the switch")
        helpers.wait_until(lambda: first_manifest_age(store) > GRACE_SECONDS, 60, 0.2, "the grace period")
        second = compact()  # January again (the late hour), and the first generation collected
        assert second.returncode == 0, second.stderr[-3000:]
        reads_then = reads["ours"]
        helpers.wait_until(lambda: reads["ours"] >= reads_then + 2 and reads["catalog"] >= 2, 120, 0.05, "more reads")
    finally:
        stop.set()
        for thread in readers:
            thread.join(120)
    assert failures == [], failures[:3]

    # January is one file of the newest generation; the live objects it absorbed are gone
    # once the grace period passed (the third run collects the second's).
    helpers.wait_until(lambda: first_manifest_age(store) > GRACE_SECONDS, 60, 0.2, "the grace period")
    third = compact()
    assert third.returncode == 0 and "compacted 0 month(s)" in third.stdout, third.stdout + third.stderr
    manifest = store.manifests()["2015-01"]
    assert manifest.generation.startswith("000002-") and len(manifest.files) == 1
    assert manifest.rows == len(january) + 1
    assert store.live_objects().get("2015-01", {}) == {}
    assert [k for k in store.list_keys(COMPACTED_PREFIX) if k.endswith(".parquet")] == manifest.files
    assert set(store.read_predictions()["event_id"]) == expected | {late.event_id}
    assert Counter(catalog_view(settings, s3)).most_common(1)[0][1] == 1
    assert set(catalog_view(settings, s3)) == expected | {late.event_id}
    locations = Catalog(aws.client("glue", settings), settings.glue_database, settings.glue_table,
                        settings.bucket).locations()
    assert locations == {"2015-01": f"s3://{settings.bucket}/{COMPACTED_PREFIX}event_month=2015-01/generation="
                                     f"{manifest.generation}/",
                         "2015-02": f"s3://{settings.bucket}/{PREDICTIONS_PREFIX}event_month=2015-02/"}


def first_manifest_age(store) -> float:
    import time

    manifests = store.manifests()
    return min((time.time() - m.written_at for m in manifests.values()), default=0.0)
