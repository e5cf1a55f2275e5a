"""The batch model's two walks of its trees, side by side: scikit-learn's and the flat one.

    python -m bench.trees [--trees 500] [--rows 1,8,32,64,256,1000]

Fits the product's batch model on a synthetic year, then times one predict call of each
size, alternating the two walks in one process (a single thread, as the consumer and the
API predict), and checks that every call of both gave the same numbers. The crossover is
what :data:`core.trees.MAX_ROWS` is set from.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.machine import describe


def timed(predict, frame, seconds: float) -> float:
    """Median milliseconds of one call, over calls filling about ``seconds``."""
    samples, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        predict(frame)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=500, help="trees per member")
    parser.add_argument("--rows", default="1,8,32,64,256,1000")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per size and walk")
    args = parser.parse_args(argv)

    from core import batch_model, dataset, features, synthetic
    from core.trees import MAX_ROWS, FlatForest

    batch_model.serve_single_threaded()
    records = dataset.to_records(synthetic.generate(hours=24 * 365, seed=3), "301")
    X, y, _ = features.training_frame(records)
    model = batch_model.build_pipeline(**batch_model.sized(args.trees)).fit(X, y)
    forest = FlatForest(model)
    print(describe())
    print(f"batch model: 2 members x {args.trees} trees, {forest.n_nodes:,} nodes, "
          f"{len(forest.indicator_columns)} categorical splits as indicators; MAX_ROWS = {MAX_ROWS}")
    print("| rows | scikit-learn ms | flat ms | speed-up | same numbers |")
    print("|---:|---:|---:|---:|---|")
    for rows in (int(r) for r in args.rows.split(",")):
        frame = X.iloc[:rows]
        same = bool(np.array_equal(forest.predict(frame), model.predict(frame)))
        sk = flat = 0.0
        for _ in range(2):  # alternated, so a change in the machine's load falls on both
            sk += timed(model.predict, frame, args.seconds / 4) / 2
            flat += timed(forest.predict, frame, args.seconds / 4) / 2
        print(f"| {rows:,} | {sk:.2f} | {flat:.2f} | {sk / flat:.1f}x | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
