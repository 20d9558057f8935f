"""Scale: what each stage of a run costs as the input grows, with the exponent between sizes
(1.0 = linear). 10,000 and 100,000 files (--million adds 1,000,000), mini-batches of 10 and
100, nodeCount 4 x processCountPerNode 1, a no-op run().

Per size: `prs plan` (wall); the whole `prs run` (wall) and the peak memory (VmHWM) of each
process kind (prs run, shard supervisors, workers); what a shard reads of the plan before its
first mini-batch (plan.json and that mini-batch's part); commit files per 1,000 mini-batches;
the merge run again on its own (wall, peak RSS); a rerun after `prs run` was killed midway:
from its start to its first new commit.

    python benchmarks/scale.py [--million]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_steps import write_step

NOOP = "def run(mini_batch):\n    return mini_batch\n"
PRS = [sys.executable, "-m", "prs_runner.commands.prs_cli"]


def make_files(root: Path, count: int) -> None:
    data = root / "data"
    data.mkdir(parents=True)
    for folder in range(0, count, 10_000):  # folders of 10,000 files
        sub = data / f"d{folder // 10_000:03d}"
        sub.mkdir()
        for i in range(folder, min(count, folder + 10_000)):
            (sub / f"f{i:07d}.txt").write_bytes(b"x")


class PeakMemory:
    """VmHWM of every process below a pid, by kind, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peaks, self.done = pid, {"prs run": 0, "shard": 0, "worker": 0}, False
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.done:
            for pid, kind in self.tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peaks[kind] = max(self.peaks[kind], int(line.split()[1]) // 1024)
            time.sleep(0.05)

    def tree(self) -> list[tuple[int, str]]:
        found, parents = [(self.pid, "prs run")], {self.pid: "prs run"}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kind = {"prs run": "shard", "shard": "worker"}.get(parents.get(ppid, ""), "")
            if kind:
                parents[int(entry.name)] = kind
                found.append((int(entry.name), kind))
        return found

    def stop(self) -> dict[str, int]:
        self.done = True
        self.thread.join()
        return self.peaks


def timed(command: list[str], cwd: Path) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    _, err = process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    return elapsed, memory.stop()


def commit_count(out: Path) -> int:
    folder = out / "_prs/commits"
    return sum(p.stat().st_size > 0 for p in folder.glob("*.idx")) if folder.exists() else 0


def rerun_after_kill(root: Path, mini_batches: int) -> float:
    """Kill `prs run` once some commits exist; the rerun's time to its first new commit."""
    first = subprocess.Popen([*PRS, "run", "step.yaml", "--fresh"], cwd=root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    while commit_count(root / "out") < 4 and first.poll() is None:
        time.sleep(0.01)
    time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = {p.name for p in (root / "out/_prs/commits").glob("*.idx")}
    started = time.perf_counter()
    rerun = subprocess.Popen([*PRS, "run", "step.yaml"], cwd=root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    while rerun.poll() is None:
        new = [p for p in (root / "out/_prs/commits").glob("*.idx")
               if p.name not in before and p.stat().st_size > 0]
        if new:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    rerun.wait()
    return elapsed


def measure(files: int, per_batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="prs-scale-") as folder:
        root = Path(folder)
        make_files(root, files)
        write_step(root, NOOP, 0, miniBatchSize=str(per_batch), nodeCount=4,
                   processCountPerNode=1, input={"type": "files", "uri": "./data"})
        plan_s, _ = timed([*PRS, "plan", "step.yaml"], root)
        run_s, peaks = timed([*PRS, "run", "step.yaml", "--fresh"], root)
        out = root / "out"
        header = (out / "_prs/plan.json").stat().st_size
        first_part = min((out / "_prs/plan").glob("*.json")).stat().st_size
        mini_batches = files // per_batch
        commit_files = len(list((out / "_prs/commits").iterdir()))
        merge_s, merge_peaks = timed([sys.executable, "-m", "prs_runner.commands.runner_cli",
                                      "merge", "--plan", str(out / "_prs/plan.json")], root)
        rerun_s = rerun_after_kill(root, mini_batches)
    return {"plan": plan_s, "run": run_s, "merge": merge_s, "rerun": rerun_s,
            "rss prs run": peaks["prs run"], "rss shard": peaks["shard"],
            "rss worker": peaks["worker"], "rss merge": merge_peaks["prs run"],
            "shard reads": (header + first_part) / 1024,
            "commit files per 1000": commit_files * 1000 / mini_batches}


UNITS = {"plan": "s", "run": "s", "merge": "s", "rerun": "s", "rss prs run": "MiB",
         "rss shard": "MiB", "rss worker": "MiB", "rss merge": "MiB", "shard reads": "KiB",
         "commit files per 1000": ""}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--million", action="store_true", help="add 1,000,000 files")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    sizes = args.sizes + ([1_000_000] if args.million else [])
    print(f"scale: {', '.join(f'{s:,}' for s in sizes)} files, nodeCount 4 x 1, no-op run(); "
          "exponent = log(cost ratio) / log(size ratio) between the last two sizes")
    for per_batch in (10, 100):
        rows = [measure(files, per_batch) for files in sizes]
        print(f"  mini-batches of {per_batch}:")
        for key, unit in UNITS.items():
            values = [row[key] for row in rows]
            low, high = values[-2], values[-1]
            exponent = (math.log(high / low) / math.log(sizes[-1] / sizes[-2])
                        if low > 0 and high > 0 else float("nan"))
            shown = "  ".join(f"{v:10.2f}" for v in values)
            print(f"    {key:22} {shown} {unit:4} exponent {exponent:5.2f}")


if __name__ == "__main__":
    main()
