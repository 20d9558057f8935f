"""Skewed mini-batches: 1,000 one-file mini-batches, 90 % sleep 5 ms and 10 % 200 ms, run by
`prs run` with nodeCount 2 x processCountPerNode 2, beside multiprocessing.Pool(4).imap
(chunksize=1) over the same files in the same run, for three layouts of the slow ones:
every tenth (the plan used to give them all to one shard), at random, clustered at the end.

    python benchmarks/skew.py [--mini-batches N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench_steps import data_paths, time_pool, time_prs_run, write_step

SLEEP = "import time\ndef run(mini_batch):\n" \
        "    for path in mini_batch:\n        time.sleep(float(open(path).read()))\n" \
        "    return mini_batch\n"
FAST, SLOW = 0.005, 0.2
GOAL = 1.10


def sleep_for(path: str) -> str:
    with open(path) as stream:
        time.sleep(float(stream.read()))
    return path


def slow_ones(layout: str, count: int) -> set[int]:
    slow = count // 10
    if layout == "every-tenth":
        return set(range(0, count, 10))
    if layout == "random":
        return set(random.Random(1).sample(range(count), slow))
    return set(range(count - slow, count))  # clustered at the end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mini-batches", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    n = args.mini_batches
    ideal = (n - n // 10) * FAST + (n // 10) * SLOW
    print(f"skew: {n} one-file mini-batches, 90 % {FAST * 1000:.0f} ms and 10 % "
          f"{SLOW * 1000:.0f} ms, nodeCount 2 x processCountPerNode 2 against Pool(4); "
          f"the ideal on 4 workers is {ideal / 4:.2f} s; median of {args.repeat}")
    worst = 0.0
    for layout in ("every-tenth", "random", "clustered"):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            step = write_step(root, SLEEP, n, miniBatchSize="1", nodeCount=2,
                              processCountPerNode=2)
            slow = slow_ones(layout, n)
            for i, path in enumerate(data_paths(root)):
                # One size for every file, so the plan's byte balance sees equal mini-batches.
                Path(path).write_text(f"{SLOW if i in slow else FAST:.3f}")
            prs = statistics.median(time_prs_run(step) for _ in range(args.repeat))
            paths = data_paths(root)
            pool = statistics.median(time_pool(sleep_for, paths, 4) for _ in range(args.repeat))
        ratio = prs / pool
        worst = max(worst, ratio)
        print(f"  {layout:12} prs run {prs:6.2f} s   Pool(4) {pool:6.2f} s   ratio {ratio:.2f}")
    print(f"  worst ratio {worst:.2f}   goal: <= {GOAL:.2f} in every layout -> "
          f"{'met' if worst <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
