"""The same processor as an AWS Lambda handler behind a Kinesis event source mapping.

Configure the mapping with ``FunctionResponseTypes=["ReportBatchItemFailures"]``,
``BisectBatchOnFunctionError`` and an on-failure destination (``infra/lambda_deploy.py``
does). AWS Lambda Powertools' batch utility reads the event and builds the partial-failure
response; this module adds what a stateful stream processor needs on top of it:

* records are grouped by station (the partition key) and each group goes through
  :func:`core.processing.process_batch` in sequence order, with that station's lag history
  and online model;
* the station's state lives in S3, pointed at by an item in the checkpoint table whose
  ``version`` makes every commit conditional: two invocations racing on a station cannot
  both commit, the loser's records are reported as failures and retried;
* a station remembers the last sequence number it committed, so records Lambda delivers
  again (a retry from the lowest failed sequence number) are skipped, not processed twice.

It reports what the consumer process serves to Prometheus (:mod:`adapters.metrics`) through
Powertools' Metrics instead: CloudWatch's embedded metric format, one JSON document per
invocation on stdout, which Lambda's log stream turns into CloudWatch metrics with no call
(namespace ``TrafficStream``, service ``consumer``; ``POWERTOOLS_METRICS_NAMESPACE`` overrides it).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from consumer.allocators import prefer_system_allocator_for_arrow, use_lean_allocators

prefer_system_allocator_for_arrow()  # before pyarrow loads, with pandas below: as the consumer process

from aws_lambda_powertools import Metrics  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response  # noqa: E402
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from adapters import aws  # noqa: E402
from adapters.result_store import ResultStore  # noqa: E402
from consumer import checkpoint_table as layout  # noqa: E402
from consumer.checkpoint_table import LAST_SEQUENCE, STATE_KEY, VERSION  # noqa: E402
from consumer.checkpoints import STATE_PREFIX  # noqa: E402
from core.batch_model import serve_single_threaded  # noqa: E402
from core.config import Settings  # noqa: E402
from core.processing import BatchOutcome, BatchPredictor, RawRecord, StationState, process_batch  # noqa: E402
from core.state_codec import SUFFIX, dump_states, load_states  # noqa: E402

log = logging.getLogger(__name__)

metrics = Metrics(namespace="TrafficStream", service="consumer")


class StationCommitConflict(RuntimeError):
    """Another invocation committed this station first; the records will be retried."""


class StationStore:
    """Per-station state for Lambda: an S3 blob, and a versioned pointer item in DynamoDB."""

    def __init__(self, dynamodb, s3, table: str, bucket: str, app_name: str) -> None:
        self.dynamodb, self.s3, self.table, self.bucket, self.app_name = dynamodb, s3, table, bucket, app_name

    def _key(self, station_id: str) -> dict:
        return layout.station_key(self.app_name, station_id)

    def load(self, station_id: str, seed: bytes | None) -> tuple[StationState, int, int]:
        """The station's state, the version it was loaded at, and its last committed sequence number."""
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(station_id), ConsistentRead=True).get("Item")
        pointer = layout.station(item)
        if pointer is None:
            states = load_states(seed) if seed else {}
            return states.get(station_id, StationState()), 0, -1
        blob = self.s3.get_object(Bucket=self.bucket, Key=pointer.state_key)["Body"].read()
        return load_states(blob)[station_id], pointer.version, pointer.last_sequence

    def commit(self, station_id: str, state: StationState, version: int, last_sequence: str) -> None:
        key = f"{STATE_PREFIX}{self.app_name}/station={station_id}/{version + 1}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=dump_states({station_id: state}))
        condition = f"attribute_not_exists({VERSION})" if version == 0 else f"{VERSION} = :v"
        values = {":n": {"N": str(version + 1)}, ":k": {"S": key}, ":s": {"S": last_sequence}}
        if version:
            values[":v"] = {"N": str(version)}
        try:
            replaced = self.dynamodb.update_item(
                TableName=self.table, Key=self._key(station_id), ConditionExpression=condition,
                UpdateExpression=f"SET {VERSION} = :n, {STATE_KEY} = :k, {LAST_SEQUENCE} = :s",
                ExpressionAttributeValues=values, ReturnValues="UPDATED_OLD",
            ).get("Attributes", {}).get(STATE_KEY, {}).get("S")
        except ClientError as exc:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StationCommitConflict(f"station {station_id} moved past version {version}") from None
            raise
        if replaced:  # no pointer leads to it any more: without this, every invocation left one behind
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=replaced)
            except ClientError as exc:  # an orphan costs storage, never a result
                log.warning("station %s: could not delete the replaced state %s: %s", station_id, replaced, exc)


class StationBatchProcessor(BatchProcessor):
    """Powertools' Kinesis batch processor, processing per station at the end of the batch."""

    def __init__(self, stations: StationStore, results: ResultStore, predictor: BatchPredictor | None = None) -> None:
        super().__init__(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
        self.stations, self.results, self.predictor = stations, results, predictor
        self.groups: dict[str, list[KinesisStreamRecord]] = defaultdict(list)

    def collect(self, record: KinesisStreamRecord) -> None:
        """The per-record handler: only group; the work happens per station in ``_clean``."""
        self.groups[record.kinesis.partition_key].append(record)

    def _prepare(self) -> None:
        super()._prepare()
        self.groups.clear()

    def _clean(self) -> None:
        seed = self.results.read_seed()
        for station_id, records in self.groups.items():
            try:
                self._process_station(station_id, records, seed)
            except Exception as exc:  # report this station's records as failed; other stations go on
                log.error("station %s: %s: %s", station_id, type(exc).__name__, exc)
                failed = {r.kinesis.sequence_number for r in records}
                # Powertools keeps the raw event records of successes.
                self.success_messages[:] = [m for m in self.success_messages
                                            if m["kinesis"]["sequenceNumber"] not in failed]
                for record in records:
                    self.failure_handler(record=record, exception=(type(exc), exc, exc.__traceback__))
        super()._clean()

    def _process_station(self, station_id: str, records: list[KinesisStreamRecord], seed: bytes | None) -> None:
        state, version, last = self.stations.load(station_id, seed)
        fresh = [r for r in records if int(r.kinesis.sequence_number) > last]
        if len(fresh) < len(records):
            metrics.add_metric(name="RecordsAlreadyCommitted", unit=MetricUnit.Count, value=len(records) - len(fresh))
            log.info("station %s: %d records already committed (a retry), skipped", station_id, len(records) - len(fresh))
        if not fresh:
            return
        shard = fresh[0].event_id.split(":", 1)[0]
        raws = [RawRecord(r.kinesis.data_as_bytes(), shard, r.kinesis.sequence_number, r.kinesis.partition_key)
                for r in fresh]
        states = {station_id: state}
        now = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        outcome = process_batch(raws, states, self.predictor, now)
        self.results.write_rows(outcome.rows)
        self.results.write_dead_letters(outcome.dead_letters, now)
        self.results.write_drift_events(outcome.drift_events, now)
        self.stations.commit(station_id, states.get(station_id, state), version, raws[-1].sequence_number)
        report(outcome, len(raws), time.perf_counter() - started)


def report(outcome: BatchOutcome, records: int, seconds: float) -> None:
    """A committed station batch's counts, as the consumer process counts them, in this invocation's metrics."""
    metrics.add_metric(name="RecordsRead", unit=MetricUnit.Count, value=records)
    metrics.add_metric(name="ResultRows", unit=MetricUnit.Count, value=len(outcome.rows))
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=len(outcome.dead_letters))
    metrics.add_metric(name="DriftDetections", unit=MetricUnit.Count, value=len(outcome.drift_events))
    metrics.add_metric(name="StationBatchDuration", unit=MetricUnit.Seconds, value=seconds)
    if outcome.newest_event is not None:
        metrics.add_metric(name="NewestEventTimestamp", unit=MetricUnit.Seconds, value=outcome.newest_event.timestamp())


_processor: StationBatchProcessor | None = None


def processor() -> StationBatchProcessor:
    """Built once per execution environment (cold start), reused by warm invocations."""
    global _processor
    if _processor is None:
        use_lean_allocators()
        serve_single_threaded()
        settings = Settings.from_env()
        s3, dynamodb = aws.clients(settings, "s3", "dynamodb")
        from adapters import model_registry

        champion = None
        if settings.tracking_uri and not settings.tracking_uri.startswith("sqlite"):
            model_registry.connect(settings)
            champion = model_registry.Champion(settings)
            champion.refresh(force=True)
        _processor = StationBatchProcessor(
            StationStore(dynamodb, s3, settings.checkpoint_table, settings.bucket, settings.app_name),
            ResultStore(s3, settings.bucket),
            champion if champion is not None and champion.ready else None,
        )
    return _processor


@metrics.log_metrics
def handler(event: dict, context) -> dict:
    p = processor()
    if p.predictor is not None:
        p.predictor.refresh()
    return process_partial_response(event=event, record_handler=p.collect, processor=p, context=context)
