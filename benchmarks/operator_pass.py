"""The cost of one reconcile pass (`compute_pass`, pure) of a running step with nodeCount
shards, half of whose pods have ended with their counts and half report live.

A pass must stay linear in the number of pods: the figure to read is the time per pod,
which should not grow with nodeCount. Baseline in the same run: building the pods' views
from their bodies (`view_pod`), which every pass needs at least once per pod.

    python benchmarks/operator_pass.py [--node-counts 100 500 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prs_operator.observation import PodView, view_pod
from tests.unit.test_operator_status import PLANNED, Case, counts, job, observe


def pod_body(shard: int, ended: bool) -> dict[str, Any]:
    state = ({"terminated": {"exitCode": 0, "reason": "Completed",
                             "message": json.dumps({"shard": shard, "counts": {
                                 "miniBatchesSucceeded": 1}})}}
             if ended else {"running": {"startedAt": "2027-01-15T08:00:00Z"}})
    return {"metadata": {"name": f"s-run-{shard}", "creationTimestamp": "2027-01-15T08:00:00Z",
                         "labels": {"parallelrun.io/role": "run"},
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(shard)},
                         "ownerReferences": [{"controller": True, "uid": "run-uid"}]},
            "status": {"phase": "Succeeded" if ended else "Running",
                       "containerStatuses": [{"state": state}]}}


def best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-counts", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'nodeCount':>9} {'pass ms':>9} {'µs/pod':>8} {'views ms':>9} {'pass/views':>10}")
    for nodes in args.node_counts:
        bodies = [pod_body(shard, ended=shard % 2 == 0) for shard in range(nodes)]
        pods: list[PodView] = [view_pod(body) for body in bodies]
        live = {shard: counts(1) for shard in range(1, nodes, 2)}
        case = Case("bench", spec={"nodeCount": nodes}, status=PLANNED,
                    jobs=[job("plan", complete=True), job("run", active=nodes // 2)],
                    pods=pods, live=live)
        passed = best_of(args.repeats, lambda case=case: observe(case))  # type: ignore[misc]
        viewed = best_of(args.repeats,
                         lambda bodies=bodies: [view_pod(b) for b in bodies])  # type: ignore[misc]
        print(f"{nodes:>9} {passed * 1e3:>9.2f} {passed / nodes * 1e6:>8.1f} "
              f"{viewed * 1e3:>9.2f} {passed / viewed:>10.2f}")


if __name__ == "__main__":
    main()
