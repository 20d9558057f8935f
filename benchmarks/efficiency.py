"""Efficiency: a CPU-bound run() of about 20 ms per mini-batch over 1,000 mini-batches,
`prs run` wall time divided by a plain multiprocessing.Pool(2).imap over the same work.

    python benchmarks/efficiency.py [--mini-batches N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from bench_steps import data_paths, time_prs_run, write_step

WORK = '''
LOOPS = {loops}
def burn(path):
    total = 0
    for i in range(LOOPS):
        total += i * i % 7
    return f"{{path}} {{total}}"
def run(mini_batch):
    return [burn(p) for p in mini_batch]
'''


def burn(path: str, loops: int) -> str:
    total = 0
    for i in range(loops):
        total += i * i % 7
    return f"{path} {total}"


def burn_batch(args: tuple[str, int]) -> str:
    return burn(*args)


def calibrate(target_seconds: float = 0.020) -> int:
    loops = 10_000
    while True:
        started = time.perf_counter()
        burn("x", loops)
        elapsed = time.perf_counter() - started
        if elapsed > 0.05:
            return int(loops * target_seconds / elapsed)
        loops *= 2


def time_pool(paths: list[str], loops: int) -> float:
    started = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        for _ in pool.imap(burn_batch, [(p, loops) for p in paths]):
            pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mini-batches", type=int, default=1_000)
    args = parser.parse_args()
    loops = calibrate()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        step = write_step(root, WORK.format(loops=loops), args.mini_batches, miniBatchSize="1",
                          nodeCount=1, processCountPerNode=2)
        pool = time_pool(data_paths(root), loops)
        prs = time_prs_run(step)
    ratio = prs / pool
    print(f"efficiency: {args.mini_batches} mini-batches of ~20 ms CPU each, 1 node x 2 processes")
    print(f"  prs run wall time:                      {prs:6.2f} s")
    print(f"  multiprocessing.Pool(2).imap wall time: {pool:6.2f} s")
    verdict = "met" if ratio <= 1.10 else "NOT met"
    print(f"  ratio prs/pool: {ratio:.3f}   goal <= 1.10 -> {verdict}")


if __name__ == "__main__":
    main()
