"""Dispatch rate: a no-op run() over 20,000 one-file mini-batches, 1 node x 2 processes,
beside a raw multiprocessing.Pool(2).imap(chunksize=1) no-op over the same paths.

    python benchmarks/dispatch.py [--mini-batches N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_steps import data_paths, time_pool, time_prs_run, write_step

NOOP = "def run(mini_batch):\n    return mini_batch\n"
GOAL = 0.5  # of the raw pool's rate, every mini-batch still committed before it counts


def noop(path: str) -> str:
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mini-batches", type=int, default=20_000)
    # 5: the pool's 0.5-0.9 s swings by a third from one run to the next on a small machine
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        step = write_step(root, NOOP, args.mini_batches, miniBatchSize="1", nodeCount=1,
                          processCountPerNode=2)
        paths = data_paths(root)
        prs, pool = [], []
        for _ in range(args.repeat):  # interleaved: a change of the machine's speed hits both
            prs.append(time_prs_run(step))
            pool.append(time_pool(noop, paths, 2))
    n = args.mini_batches
    prs_rate, pool_rate = n / statistics.median(prs), n / statistics.median(pool)
    print(f"dispatch: {n} no-op one-file mini-batches, 1 node x 2 processes, median of "
          f"{args.repeat}")
    print(f"  prs run (whole run, every result committed): {prs_rate:9,.0f} mini-batches/s "
          f"({statistics.median(prs):.2f} s)")
    print(f"  multiprocessing.Pool(2).imap(chunksize=1):   {pool_rate:9,.0f} mini-batches/s "
          f"({statistics.median(pool):.2f} s)")
    ratio = prs_rate / pool_rate
    print(f"  ratio prs/pool: {ratio:.2f}   goal: >= {GOAL:.2f} of the pool's rate -> "
          f"{'met' if ratio >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
