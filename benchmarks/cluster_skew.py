"""Skew across pods: one step run by 2 shard pods x 2 processes, beside the same step run by
one pod of 4 processes, on the test control plane (pods are real runner processes started
by its node agent; the operator runs beside it). 240 one-file mini-batches; the first half
sleep 0.1 s, the rest nothing, so the plan gives every slow one to shard 0 and only work
stealing across the two pods can even them out. Interleaved, best of --repeat.

    python benchmarks/cluster_skew.py [--repeat R]

Reported: the shards' time, from the plan written (plan.json's mtime) to the last shard's
outcome written (the Job's own timestamps have whole seconds only), and the step's wall time
from creation to its end (plan and merge pods included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_cluster import bench_cluster, running_operator

from tests.cluster.controlplane import ControlPlane
from tests.cluster.step_scenarios import (
    condition_true,
    create_step,
    stage_step,
    step_document,
    wait_finished,
)

FILES, DELAY, GOAL = 240, 0.1, 1.15
SKEWED = f'''
import os, time
def run(mini_batch):
    for path in mini_batch:
        if int(open(path).read()) < {FILES // 2}:
            time.sleep({DELAY})
    return [os.path.basename(p) for p in mini_batch]
'''
NAMESPACE = "bench-skew"


def shard_seconds(plane: ControlPlane, name: str) -> float:
    prs = plane.pvc_path(NAMESPACE, "data") / "out" / name / "_prs"
    outcomes = list((prs / "shards").glob("*.json"))
    if not outcomes:
        raise SystemExit(f"{name}: no shard outcome under {prs}: "
                         f"{sorted(str(p.relative_to(prs)) for p in prs.rglob('*'))[:40]}")
    ended = max(p.stat().st_mtime_ns for p in outcomes)
    rows = (prs / "report/processed_mini_batches.csv").read_text().splitlines()[1:]
    by_shard = [row.split(",")[1] for row in rows]
    started = (prs / "plan.json").stat().st_mtime_ns
    print(f"  {name}: {len(list((prs / 'steals').glob('*.json')))} steals; mini-batches per "
          f"shard {[by_shard.count(str(s)) for s in range(len(outcomes))]}; shards ended "
          f"{[round((p.stat().st_mtime_ns - started) / 1e9, 2) for p in sorted(outcomes)]} s "
          "after the plan", file=sys.stderr)
    for mark in sorted((prs / "steals").glob("*.json")):
        data = json.loads(mark.read_text())
        print(f"    {(mark.stat().st_mtime_ns - started) / 1e9:5.2f} s: {data['victim']} -> "
              f"{data['thief']} {len(data['ids'])} ids {data['ids'][:1]}..{data['ids'][-1:]}",
              file=sys.stderr)
    return (ended - (prs / "plan.json").stat().st_mtime_ns) / 1e9


def run_step(plane: ControlPlane, name: str, nodes: int, processes: int) -> tuple[float, float]:
    began = time.monotonic()
    create_step(plane, NAMESPACE, step_document(
        name, nodeCount=nodes, processCountPerNode=processes, miniBatchSize="1",
        allowReuse=False))  # the same work each time: never the earlier result
    status = wait_finished(plane, NAMESPACE, name, timeout=600)
    wall = time.monotonic() - began
    if not condition_true(status, "Complete"):
        raise SystemExit(f"{name} did not complete: {status.get('message')}")
    return shard_seconds(plane, name), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"one pod x 4": [], "two pods x 2": []}
    with bench_cluster("prs-skew-", (NAMESPACE,)) as (plane, work), \
            running_operator(plane, work):
        stage_step(plane, NAMESPACE, FILES, SKEWED)
        for attempt in range(args.repeat):
            results["one pod x 4"].append(run_step(plane, f"one-{attempt}", 1, 4))
            results["two pods x 2"].append(run_step(plane, f"two-{attempt}", 2, 2))
    print(f"cluster skew: {FILES} one-file mini-batches, the first half {DELAY * 1000:.0f} ms "
          f"(all planned on shard 0), best of {args.repeat}; the ideal on 4 processes is "
          f"{FILES // 2 * DELAY / 4:.1f} s of sleep")
    best = {label: min(runs) for label, runs in results.items()}
    for label, (job, wall) in best.items():
        print(f"  {label:14} shards {job:6.2f} s   step created to finished {wall:6.1f} s")
    ratio = best["two pods x 2"][0] / best["one pod x 4"][0]
    print(f"  ratio (shards) {ratio:.2f}   goal: <= {GOAL:.2f} -> "
          f"{'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
