"""Everything a stream holds, shard by shard, from its oldest record to its tip.

For audits, tests and benchmarks that need to know what was put on the stream (the
consumer reads from checkpoints instead).
"""

from __future__ import annotations

from adapters.kinesis_reader import MAX_LIMIT, KinesisReader


def shard_records(kinesis, stream_name: str) -> dict[str, list[dict]]:
    """Each shard's records, in sequence order, as ``GetRecords`` returns them."""
    reader = KinesisReader(kinesis, stream_name, MAX_LIMIT)
    return {shard.shard_id: reader.read_shard(shard.shard_id) for shard in reader.shards()}
