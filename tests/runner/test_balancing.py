"""Work stealing between shards: an idle shard takes what another has left, and the output
stays exactly once and in order, with kills and reruns in between."""

from __future__ import annotations

import signal
import time

from prs_runner.planning.plan_store import read_plan
from tests.runner.conftest import MakeStep, StepDir
from tests.runner.test_exactly_once import kill_workers_while_it_runs, wait_for

# The first half of the items is slow. With files of one size and one file per mini-batch,
# the plan gives the first half of the mini-batches to shard 0: every slow one.
SKEWED = """
import os, time
def run(mini_batch):
    for path in mini_batch:
        number = int(open(path).read())
        mark("calls", str(number))
        if number < SLOW_BELOW:
            time.sleep(DELAY)
    return [os.path.basename(p) for p in mini_batch]
"""


def skewed(make_step: MakeStep, files: int, delay: float, **spec: object) -> StepDir:
    step = make_step(f"DELAY = {delay}\nSLOW_BELOW = {files // 2}\n" + SKEWED, files=files,
                     miniBatchSize="1", nodeCount=2, **spec)
    for i in range(files):
        (step.root / "data" / f"item{i:04d}.txt").write_text(f"{i:04d}\n")
    return step


def planned_shards(step: StepDir) -> dict[int, int]:
    plan = read_plan(str(step.out / "_prs/plan.json"))
    return {mb.id: mb.shard for mb in plan.mini_batches}


def test_an_idle_shard_takes_the_slow_shards_work(make_step: MakeStep) -> None:
    step = skewed(make_step, files=40, delay=0.1)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(40)]
    planned = planned_shards(step)
    assert {i for i, shard in planned.items() if shard == 0} == set(range(20))
    ran_by = {int(row["id"]): int(row["shard"]) for row in step.report_rows()}
    taken = [i for i in range(20) if ran_by[i] == 1]
    assert len(taken) >= 5, ran_by  # shard 1 ran slow ones the plan gave shard 0
    steals = list((step.out / "_prs/steals").glob("*.json"))
    assert steals
    # Each ran once, but for one a worker held while its shard was robbed.
    calls = [int(c) for c in step.marks("calls")]
    assert set(calls) == set(range(40)) and len(calls) <= 40 + len(steals)


def test_killed_workers_while_shards_take_work_lose_and_duplicate_nothing(
    make_step: MakeStep
) -> None:
    step = skewed(make_step, files=300, delay=0.02, processCountPerNode=2, runMaxTry=10)
    assert kill_workers_while_it_runs(step, seed=11, most=12, every=0.2) >= 4
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(300)]
    assert step.job_result()["items"] == {"total": 300, "succeeded": 300, "failed": 0}
    ran_by = {int(row["id"]): int(row["shard"]) for row in step.report_rows()}
    assert any(ran_by[i] == 1 for i in range(150))


def test_a_rerun_after_a_kill_resumes_with_the_marks_it_finds(make_step: MakeStep) -> None:
    step = skewed(make_step, files=60, delay=0.1)
    run = step.start()
    wait_for(lambda: any((step.out / "_prs/steals").glob("*.json"))
             if (step.out / "_prs/steals").exists() else False)
    time.sleep(0.3)
    run.send_signal(signal.SIGKILL)
    run.wait()
    before = len(step.marks("calls"))
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(60)]
    rerun = step.marks("calls")[before:]
    assert len(rerun) <= 60 - before + 4 + 2  # what was in flight, and a race at the end


def killed_with_marks(step: StepDir, *args: str) -> None:
    run = step.start(*args)
    wait_for(lambda: any((step.out / "_prs/steals").glob("*.json"))
             if (step.out / "_prs/steals").exists() else False)
    run.send_signal(signal.SIGKILL)
    run.wait()


def test_a_rerun_with_fewer_shards_drops_the_marks_of_the_old_plan(make_step: MakeStep) -> None:
    """nodeCount does not change results, so a rerun keeps what was committed; the plan is
    cut again for 2 shards, and the marks that named shard 2 of the old one go with it
    (every shard crashed on them, IndexError, until --fresh)."""
    step = skewed(make_step, files=60, delay=0.05)
    killed_with_marks(step, "--set", "nodeCount=3")
    marks = [p.name for p in (step.out / "_prs/steals").glob("*.json")]
    assert marks
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(60)]
    assert not set(marks) & {p.name for p in (step.out / "_prs/steals").glob("*.json")}


def test_a_mark_naming_a_shard_the_plan_lacks_moves_nothing(make_step: MakeStep) -> None:
    """The same plan, resumed, with a mark of shard 7 among its own (copied from another
    output, or written by hand): every mini-batch keeps an owner that runs it."""
    step = skewed(make_step, files=60, delay=0.05)
    killed_with_marks(step)
    (step.out / "_prs/steals/0000000000000001-0-7.json").write_text(
        '{"victim": 0, "thief": 7, "ids": [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]}')
    (step.out / "_prs/steals/0000000000000002-7-1.json").write_text(
        '{"victim": 7, "thief": 1, "ids": [20, 21]}')
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(60)]


def test_a_mini_batch_run_by_two_shards_counts_once_against_the_thresholds(
    make_step: MakeStep
) -> None:
    """Each mini-batch fails its one item, and errorThreshold is their number: exactly
    reached, not exceeded. Shard 0's mini-batches take 3 ms, so its worker holds several
    queued when shard 1 takes the tail: those run in both shards. Both counted them, and
    the step failed with ErrorThresholdExceeded over more failed items than it had."""
    files = 200
    script = SKEWED.replace("return [os.path.basename(p) for p in mini_batch]", "return []")
    step = make_step(f"DELAY = 0.003\nSLOW_BELOW = {files // 2}\n" + script, files=files,
                     miniBatchSize="1", nodeCount=2, processCountPerNode=1,
                     errorThreshold=files)
    for i in range(files):
        (step.root / "data" / f"item{i:04d}.txt").write_text(f"{i:04d}\n")
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert step.job_result()["items"] == {"total": files, "succeeded": 0, "failed": files}
    calls = [int(c) for c in step.marks("calls")]
    assert len(calls) > files  # some did run twice: the case this is about


def test_a_few_long_mini_batches_go_one_to_each_worker(make_step: MakeStep) -> None:
    """A worker is sent at most its share of what is pending: the first worker ready took
    0-3, the next 4-7, and two of the four workers ran none (twice the time)."""
    step = make_step("import time\ndef run(mini_batch):\n    time.sleep(1.5)\n"
                     "    return mini_batch\n", files=8, miniBatchSize="1", nodeCount=1,
                     processCountPerNode=4)
    result = step.run(timeout=120)
    assert result.returncode == 0, result.stderr
    per_worker: dict[str, int] = {}
    for row in step.report_rows():
        per_worker[row["process"]] = per_worker.get(row["process"], 0) + 1
    assert len(per_worker) >= 3, per_worker  # a worker slow to start may miss its share
    assert max(per_worker.values()) <= 3, per_worker
