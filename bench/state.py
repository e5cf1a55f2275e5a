"""State bytes a batch writes, against the stations on its shard.

    python -m bench.state [--stations 1,32,128,512] [--days 35]

For each shard size, synthetic stations are streamed for ``--days`` days (the stations'
state then has its full lag history and calibration window), then batches arrive as at
real time: an hour's records for one station at a time (a consumer polling every second
finds one or a few), and an hour's records for every station at once (a replay's backlog).
Each batch goes through :func:`core.processing.process_batch` and the commit's own plan
(:meth:`core.state_segments.SegmentedState.plan`), which is what the consumer uploads;
beside it, the whole-shard snapshot the same batch would store if every batch stored every
station. Deterministic: the numbers are bytes, not times.
"""

from __future__ import annotations

import argparse
import statistics

from bench.machine import describe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", default="1,32,128,512")
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--batches", type=int, default=24, help="batches of each kind measured")
    args = parser.parse_args(argv)

    from core import dataset, synthetic
    from core.processing import RawRecord, process_batch
    from core.schema import encode
    from core.state_codec import dump_states
    from core.state_segments import SegmentedState

    hours = 24 * args.days + 2 * args.batches + 1
    rows = []
    for count in (int(n) for n in args.stations.split(",")):
        streams = {f"s{i:04d}": dataset.to_records(synthetic.generate(hours=hours, seed=i, missing_rate=0.0), f"s{i:04d}")
                   for i in range(count)}
        states: dict = {}
        warm = 24 * args.days
        for station, records in streams.items():
            process_batch([RawRecord(encode(r), "shard", str(j)) for j, r in enumerate(records[:warm])],
                          states, None, "t")
        committed = SegmentedState.empty().plan(states, set(states), "s0.jsonl", "m0.manifest.json").state
        measured = {"one": [], "all": []}
        for n in range(args.batches * 2):
            hour = warm + n
            kind = "one" if n % 2 == 0 else "all"
            chosen = [sorted(streams)[n // 2 % count]] if kind == "one" else sorted(streams)
            batch = [RawRecord(encode(streams[s][hour]), "shard", f"{hour}-{s}") for s in chosen]
            outcome = process_batch(batch, states, None, "t")
            plan = committed.plan(states, outcome.stations, f"s{n + 1}.jsonl", f"m{n + 1}.manifest.json")
            measured[kind].append((len(dump_states(states)), plan.written, len(plan.uploads),
                                   len(plan.uploads.get(f"m{n + 1}.manifest.json", b""))))
            committed = plan.state
        station_bytes = statistics.mean(len(dump_states({s: st})) for s, st in states.items())
        for kind, samples in measured.items():
            if count == 1 and kind == "all":
                continue  # the same batch as "one"
            rows.append((count, 1 if kind == "one" else count, statistics.mean(s[0] for s in samples),
                         statistics.mean(s[1] for s in samples), statistics.mean(s[3] for s in samples),
                         statistics.mean(s[2] for s in samples), station_bytes))
        print(f"{count} stations: done", flush=True)
    print()
    print(describe())
    print(f"synthetic stations after {args.days} days; {args.batches} batches of each kind; bytes are means per batch\n")
    print("| stations on the shard | stations the batch touched | whole-shard snapshot, bytes | segment + manifest, "
          "bytes | of which the manifest | objects uploaded | a station's state, bytes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for count, touched, whole, written, manifest, objects, station in rows:
        print(f"| {count:,} | {touched:,} | {whole:,.0f} | {written:,.0f} | {manifest:,.0f} | {objects:.1f} | "
              f"{station:,.0f} |")


if __name__ == "__main__":
    main()
