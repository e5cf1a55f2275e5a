"""Everything a stream holds, shard by shard, from its oldest record to its tip.

For audits, tests and benchmarks that need to know what was put on the stream (the
consumer reads from checkpoints instead).
"""

from __future__ import annotations


def shard_records(kinesis, stream_name: str) -> dict[str, list[dict]]:
    """Each shard's records, in sequence order, as ``GetRecords`` returns them."""
    contents: dict[str, list[dict]] = {}
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        records = contents[shard["ShardId"]] = []
        iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records.extend(response["Records"])
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                break  # at the tip of an open shard; a closed one ends without a next iterator
            iterator = response.get("NextShardIterator")
    return contents
