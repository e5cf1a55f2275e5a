"""The prediction table in the AWS Glue Data Catalog, so Athena queries it with no crawler.

One external Parquet table over ``s3://<bucket>/predictions/``, partitioned by
``event_month``, its columns those of :data:`adapters.result_store.ROW_SCHEMA`
(``docs/operations.md#querying-the-predictions`` has the same table as Athena DDL).
Partitions are registered explicitly, never projected: a compacted month's partition points
at its current generation's prefix (``compacted/event_month=M/generation=G/``), an open
month's at the consumer's prefix, and moving a partition from one to the other is one
``UpdatePartition``, atomic for a query planned after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
from botocore.exceptions import ClientError

from adapters.result_store import PARTITION, PREDICTIONS_PREFIX, ROW_SCHEMA

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def hive_type(arrow: pa.DataType) -> str:
    """The Glue/Hive type Athena reads an Arrow column as.

    >>> [hive_type(t) for t in (pa.string(), pa.int64(), pa.int16(), pa.float64(), pa.date32(), pa.timestamp("us", "UTC"))]
    ['string', 'bigint', 'smallint', 'double', 'date', 'timestamp']
    """
    for check, name in ((pa.types.is_string, "string"), (pa.types.is_int64, "bigint"), (pa.types.is_int16, "smallint"),
                        (pa.types.is_float64, "double"), (pa.types.is_date32, "date"),
                        (pa.types.is_timestamp, "timestamp")):
        if check(arrow):
            return name
    raise TypeError(f"no catalog type for the Arrow type {arrow}")


COLUMNS = [{"Name": field.name, "Type": hive_type(field.type)} for field in ROW_SCHEMA]


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@dataclass
class Catalog:
    glue: object
    database: str
    table: str
    bucket: str

    def location(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def _descriptor(self, prefix: str) -> dict:
        return {"Columns": COLUMNS, "Location": self.location(prefix), **PARQUET}

    def ensure(self) -> None:
        """Create the database and the table, or bring the table's columns up to date (``infra create``)."""
        try:
            self.glue.create_database(DatabaseInput={"Name": self.database,
                                                     "Description": "traffic-stream: the stream's predictions"})
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
        table = {"Name": self.table, "TableType": "EXTERNAL_TABLE",
                 "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
                 "PartitionKeys": [{"Name": PARTITION, "Type": "string"}],
                 "StorageDescriptor": self._descriptor(PREDICTIONS_PREFIX)}
        try:
            self.glue.create_table(DatabaseName=self.database, TableInput=table)
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            self.glue.update_table(DatabaseName=self.database, TableInput=table)

    def locations(self) -> dict[str, str]:
        """Each registered partition's month → location."""
        found = {}
        for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=self.table):
            found.update((p["Values"][0], p["StorageDescriptor"]["Location"]) for p in page["Partitions"])
        return found

    def register(self, prefixes: Mapping[str, str], known: Mapping[str, str]) -> int:
        """Create the partitions of ``prefixes`` (month → S3 prefix) missing from ``known``
        (:meth:`locations`); returns how many."""
        missing = [m for m in sorted(prefixes) if m not in known]
        for i in range(0, len(missing), 100):
            done = self.glue.batch_create_partition(
                DatabaseName=self.database, TableName=self.table,
                PartitionInputList=[{"Values": [m], "StorageDescriptor": self._descriptor(prefixes[m])}
                                    for m in missing[i : i + 100]])
            errors = [e for e in done.get("Errors", []) if e["ErrorDetail"].get("ErrorCode") != "AlreadyExistsException"]
            if errors:
                raise RuntimeError(f"the catalog refused partitions: {errors[:3]}")
        return len(missing)

    def point(self, month: str, prefix: str) -> None:
        """Switch ``month``'s partition to ``prefix`` (one atomic update), creating it if unregistered."""
        try:
            self.glue.update_partition(DatabaseName=self.database, TableName=self.table, PartitionValueList=[month],
                                       PartitionInput={"Values": [month], "StorageDescriptor": self._descriptor(prefix)})
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
            self.register({month: prefix}, {})
