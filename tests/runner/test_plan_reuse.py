"""A resume lists the input again (that is how a change is seen) but does not cut it again:
the stored plan is kept when nothing it depends on changed."""

from __future__ import annotations

import os

import yaml

from tests.runner.conftest import MakeStep, StepDir

ECHO = """
import os
def run(mini_batch):
    mark("calls", len(mini_batch))
    return [os.path.basename(p) for p in mini_batch]
"""


def interrupted(make_step: MakeStep) -> StepDir:
    """A finished step made to look interrupted: its result is gone, its commits stay."""
    step = make_step(ECHO, files=12, miniBatchSize="3", allowReuse=False, nodeCount=2)
    assert step.run().returncode == 0
    (step.out / "_prs/report/job_result.json").unlink()
    (step.root / "marks/calls").unlink()
    return step


def plan_files(step: StepDir) -> dict[str, tuple[int, int]]:
    files = [step.out / "_prs/plan.json", *sorted((step.out / "_prs/plan").iterdir())]
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in files}


def test_a_resume_keeps_the_stored_plan(make_step: MakeStep) -> None:
    step = interrupted(make_step)
    before = plan_files(step)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert plan_files(step) == before  # the same files: not written again
    assert step.marks("calls") == []  # everything was committed: nothing ran again
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(12)]


def test_a_changed_input_is_planned_again(make_step: MakeStep) -> None:
    step = interrupted(make_step)
    before = plan_files(step)
    item = step.root / "data/item0005.txt"
    item.write_text("5 changed\n")
    os.utime(item, ns=(1, 1))  # another size and mtime: another listing
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert plan_files(step) != before
    assert step.marks("calls") == ["3"] * 4  # another fingerprint: everything runs again


def test_a_changed_runtime_setting_keeps_the_results_but_plans_again(
    make_step: MakeStep
) -> None:
    step = interrupted(make_step)
    before = plan_files(step)
    document = yaml.safe_load(step.step.read_text())
    document["spec"]["nodeCount"] = 3  # how it runs, not what it computes
    step.step.write_text(yaml.safe_dump(document))
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert plan_files(step) != before  # three shard ranges now
    assert step.marks("calls") == []  # the committed results still count
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(12)]
