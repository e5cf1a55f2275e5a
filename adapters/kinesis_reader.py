"""Reading a Kinesis stream: its shards, where to resume each, pages of records, reads ahead.

The consumer reads batch by batch from its checkpoints (:mod:`consumer.worker`);
:mod:`monitor.stream_contents` reads whole shards for audits, tests and benchmarks. Both
read through :class:`KinesisReader`, so listing, iterators and the end of a shard mean the
same to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

#: The most records one ``GetRecords`` call returns.
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Shard:
    shard_id: str
    #: The shards it was split or merged from (none for a shard the stream was created with).
    parent_ids: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    """What one ``GetRecords`` returned."""

    records: list[dict]
    #: Where the shard goes on; None once a closed shard has been read to its end.
    following: str | None
    #: How far behind the tip of the shard the page ended when it was read (``MillisBehindLatest``).
    millis_behind: int = 0

    @property
    def behind(self) -> bool:
        """Records were on the shard beyond this page when it was read."""
        return self.millis_behind > 0


@dataclass(frozen=True)
class ReadAhead:
    """A ``GetRecords`` already on its way, and the iterator it was sent with."""

    iterator: str
    page: Future


class KinesisReader:
    """Reads the shards of one stream, at most ``limit`` records a call.

    ``submit`` runs a call in the background and returns its future (the consumer's I/O
    threads); it is needed only to read ahead.
    """

    def __init__(self, kinesis, stream_name: str, limit: int, submit: Callable[..., Future] | None = None) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.limit = limit
        self.submit = submit

    def shards(self) -> list[Shard]:
        """Every shard of the stream, open and closed, with its parents: ``ListShards``, page by page."""
        shards, token = [], None
        while True:
            kwargs = {"NextToken": token} if token else {"StreamName": self.stream_name}
            page = self.kinesis.list_shards(**kwargs)
            shards.extend(page["Shards"])
            token = page.get("NextToken")
            if not token:
                break
        return [Shard(s["ShardId"], tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p))
                for s in shards]

    def iterator(self, shard_id: str, after: str | None) -> str:
        """Where reading ``shard_id`` resumes: after the checkpoint's sequence number ``after``;
        a shard without one starts at ``TRIM_HORIZON``, its oldest record still on the stream."""
        kwargs = {"StreamName": self.stream_name, "ShardId": shard_id}
        if after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def read(self, iterator: str) -> Page:
        response = self.kinesis.get_records(ShardIterator=iterator, Limit=self.limit)
        return Page(response["Records"], response.get("NextShardIterator"), int(response.get("MillisBehindLatest", 0)))

    def send(self, iterator: str) -> ReadAhead:
        """Put the read at ``iterator`` on its way in the background."""
        return ReadAhead(iterator, self.submit(self.read, iterator))

    def page(self, iterator: str, ahead: ReadAhead | None = None) -> Page:
        """The page at ``iterator``: the one read ahead if ``ahead`` was sent from it, else read now."""
        if ahead is not None and ahead.iterator == iterator:
            return ahead.page.result()
        return self.read(iterator)

    def read_ahead(self, page: Page) -> ReadAhead | None:
        """Send the read that follows ``page`` while it is processed, if the shard is behind its tip.

        Behind the tip (the page is full, or more records were waiting) the next read's wait
        overlaps the processing. At the tip it is not sent: it would return at once with what
        arrived meanwhile (next to nothing), and the records arriving while this page is
        processed would wait for that small page to be processed too; one read after
        processing gets them all, sooner.
        """
        if page.records and page.following and (len(page.records) >= self.limit or page.behind):
            return self.send(page.following)
        return None

    def _pages(self, shard_id: str, after: str | None) -> Iterator[Page]:
        """Pages from where ``after`` resumes to the tip of an open shard or the end of a closed one."""
        iterator = self.iterator(shard_id, after)
        while iterator:
            page = self.read(iterator)
            yield page
            if not page.records and not page.behind:
                return  # at the tip of an open shard; a closed one ends without a following iterator
            iterator = page.following

    def read_range(self, shard_id: str, after: str | None, until: str) -> list[dict]:
        """The records after ``after`` up to and including sequence number ``until``, or as many
        of them as are still on the stream (the rest may have been trimmed)."""
        last = int(until)
        records: list[dict] = []
        for page in self._pages(shard_id, after):
            wanted = [r for r in page.records if int(r["SequenceNumber"]) <= last]
            records.extend(wanted)
            if len(wanted) < len(page.records) or (records and int(records[-1]["SequenceNumber"]) >= last):
                break
        return records

    def read_shard(self, shard_id: str) -> list[dict]:
        """Every record on the shard, in sequence order, as ``GetRecords`` returns them."""
        return [record for page in self._pages(shard_id, None) for record in page.records]
