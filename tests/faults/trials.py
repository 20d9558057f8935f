"""`make test-faults`: fault injection against real `prs run` processes.

Every trial runs a step (files or tabular CSV), injects one fault at a random moment, then
runs the step again to completion and checks the output: every item exactly once, in
order. Faults: SIGKILL of a worker, of a shard supervisor, of `prs run` itself, of `prs
run` during the merge; a full disk (the output on a small tmpfs, enlarged for the rerun);
a concurrent second run on the same output. Prints `N trials, N exactly once` and exits 1
on any other result. Needs root (mount) for the full-disk trials.

    python tests/faults/trials.py [--trials N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

FAULTS = ("kill-worker", "kill-supervisor", "kill-prs-run", "kill-during-merge", "full-disk",
          "second-run")
PAD = "x" * 1000  # output lines large enough for the small disk to fill up
# Files of one size, two per mini-batch: the plan gives the first half to shard 0, and those
# are the slow ones, so shard 1 takes work from it (steals) while faults strike.
FILES_SCRIPT = f"""
import os, time
def run(mini_batch):
    time.sleep(0.16 if int(open(mini_batch[0]).read()) < 30 else 0.0)
    return [os.path.basename(p) + " " + open(p).read().strip() + " {PAD}" for p in mini_batch]
"""
TABLE_SCRIPT = f"""
import time
def run(df):
    time.sleep(0.08)
    return df.assign(pad="{PAD}")
"""


@dataclass
class Trial:
    root: Path
    kind: str  # files | tabular

    @property
    def out(self) -> Path:
        return self.root / "out"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "prs_runner.commands.prs_cli", "run",
                str(self.root / "step.yaml"), *extra]

    def expected(self) -> list[str]:
        if self.kind == "files":
            return [f"item{i:04d}.txt {i:02d} {PAD}" for i in range(60)]
        return [f"{i} row{i} {PAD}" for i in range(3000)]

    def output(self) -> list[str]:
        name = "parallel_run_step.txt"
        return (self.out / name).read_text().splitlines()


def make_trial(root: Path, kind: str) -> Trial:
    (root / "src").mkdir(parents=True)
    (root / "data").mkdir()
    if kind == "files":
        for i in range(60):
            (root / "data" / f"item{i:04d}.txt").write_text(f"{i:02d}\n")
        script, spec = FILES_SCRIPT, {"input": {"type": "files", "uri": "./data"},
                                      "miniBatchSize": "2"}
    else:
        rows = "".join(f"{i},row{i}\n" for i in range(3000))
        (root / "data" / "table.csv").write_text("id,name\n" + rows)
        script, spec = TABLE_SCRIPT, {"input": {"type": "tabular", "uri": "./data"},
                                      "miniBatchSize": "100rows"}
    (root / "src" / "score.py").write_text(textwrap.dedent(script))
    document = {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
                "metadata": {"name": "fault-trial"},
                "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                         "output": {"uri": "./out"}, "nodeCount": 2, "processCountPerNode": 2,
                         "allowReuse": False, **spec}}
    (root / "step.yaml").write_text(yaml.safe_dump(document))
    (root / "out").mkdir()
    return Trial(root, kind)


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as stream:
                found += [int(c) for c in stream.read().split()]
    except OSError:
        pass
    return found


def kill_random(pids: list[int], rng: random.Random) -> bool:
    if not pids:
        return False
    with_ok = rng.choice(pids)
    try:
        os.kill(with_ok, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def inject(trial: Trial, fault: str, rng: random.Random) -> str:
    """Start a run, inject FAULT, wait for the run to end; what happened, for the log."""
    first = subprocess.Popen(trial.command(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(rng.uniform(0.1, 0.9))
    note = "ran to the end before the fault"
    if fault == "kill-prs-run":
        first.kill()
        note = "killed prs run"
    elif fault in ("kill-supervisor", "kill-worker"):
        for _ in range(50):  # the processes may still be starting
            supervisors = children(first.pid)
            targets = supervisors if fault == "kill-supervisor" else [
                w for s in supervisors for w in children(s)]
            if kill_random(targets, rng):
                note = f"killed a {fault.split('-')[1]}"
                break
            time.sleep(0.02)
    elif fault == "kill-during-merge":
        shards = trial.out / "_prs" / "shards"
        deadline = time.monotonic() + 60
        while first.poll() is None and time.monotonic() < deadline:
            if shards.exists() and len(list(shards.iterdir())) >= 2:
                first.kill()
                note = "killed prs run as the merge began"
                break
            time.sleep(0.001)
    elif fault == "second-run":
        second = subprocess.run(trial.command("--set", "runMaxTry=2"), capture_output=True,
                                text=True, timeout=120)
        if first.poll() is None and second.returncode != 2:
            raise AssertionError(f"a second run was not refused: {second.stderr}")
        note = "second run refused" if second.returncode == 2 else "second run after the first"
    _, errors = first.communicate(timeout=300)
    if "Traceback" in errors:
        raise AssertionError(f"a traceback instead of one line: {errors[-3000:]}")
    if fault == "full-disk" and first.returncode != 0:
        last = (errors.strip().splitlines() or [""])[-1][:120]
        note = f"the disk filled up (exit {first.returncode}{': ' + last if last else ''})"
    return note


def run_trial(number: int, fault: str, kind: str, rng: random.Random, base: Path) -> bool:
    root = base / f"trial-{number:03d}"
    root.mkdir()
    trial = make_trial(root, kind)
    mounted = False
    try:
        if fault == "full-disk":
            size = "40k" if kind == "files" else "200k"
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                            str(trial.out)], check=True)
            mounted = True
        note = inject(trial, fault, rng)
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(trial.out)], check=True)
        rerun = subprocess.run(trial.command(), capture_output=True, text=True, timeout=300)
        if rerun.returncode != 0 or trial.output() != trial.expected():
            raise AssertionError(f"NOT exactly once ({note}); rerun exit {rerun.returncode}: "
                                 f"{rerun.stderr[-2000:]}")
    except AssertionError as failure:
        print(f"trial {number} {fault} {kind}: {failure}", file=sys.stderr)
        return False
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(trial.out)], check=False)
    steals = len(list((trial.out / "_prs/steals").glob("*.json")))
    print(f"trial {number:3d}: {kind:8s} {fault:18s} {note}: exactly once"
          + (f" ({steals} steals)" if steals else ""))
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed} (--seed to repeat)")
    good = 0
    with tempfile.TemporaryDirectory(prefix="prs-faults-") as base:
        for number in range(args.trials):
            fault = FAULTS[number % len(FAULTS)]
            kind = "files" if (number // len(FAULTS)) % 2 == 0 else "tabular"
            good += run_trial(number, fault, kind, rng, Path(base))
    print(f"{args.trials} trials, {good} exactly once")
    return 0 if good == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
