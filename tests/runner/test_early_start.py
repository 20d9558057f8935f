"""`prs run` starts early: its shard processes first thing (they import while the input is
surveyed, and touch the output only once given the go), and, while a large input is still
being cut, shard 0 runs the mini-batches already cut (openings, `_prs/plan/opening-*.json`),
then the rest once the plan is whole, each exactly once. Real shard supervisors and workers;
where a test plays `prs run` or its planner, it decides when each part appears."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

from prs_runner.execution.local_run import STEP_FILE, cut_plan, survey_step
from prs_runner.output.commit_log import read_commits
from prs_runner.planning.plan_store import PLAN_FILE, write_opening, write_plan
from prs_runner.step.validation import load_step
from prs_runner.storage.filesystem import Storage
from tests.runner.conftest import MakeStep
from tests.runner.test_exactly_once import runner_processes, wait_for
from tests.runner.test_tabular import tabular_step

SCRIPT = """
import os
def run(mini_batch, context):
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "calls")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, str(context.minibatch_index)), "a") as f:
        f.write("x")
    return mini_batch
"""


def committed(output: Storage) -> collections.Counter[int]:
    return collections.Counter(c.header.id for c in read_commits(output))


def test_shard_0_runs_the_openings_before_the_plan_is_whole_and_each_once(
    tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    rows = "".join(f'{i},"text, {i}"\n' for i in range(2000))
    (tmp_path / "data" / "t.csv").write_text("id,text\n" + rows)
    step = tabular_step(tmp_path, script=SCRIPT, miniBatchSize="1KB",
                        input={"type": "tabular", "uri": "./data"})
    survey = survey_step(load_step(step.step))
    plan = cut_plan(load_step(step.step), survey)
    assert len(plan.mini_batches) > 30
    output = Storage(survey.spec["output"]["uri"])
    output.write_atomic(STEP_FILE, json.dumps(survey.spec).encode())
    plan_uri = output.uri_of(PLAN_FILE)
    write_opening(plan_uri, survey.input_root, plan.mini_batches[:8])
    shard = subprocess.Popen(
        [sys.executable, "-m", "prs_runner.commands.runner_cli", "shard", "--plan", plan_uri,
         "--index", "0", "--await-plan"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: set(committed(output)) == set(range(8)), timeout=60)
        write_opening(plan_uri, survey.input_root, plan.mini_batches[8:16])
        wait_for(lambda: set(committed(output)) == set(range(16)), timeout=60)
        time.sleep(0.3)  # nothing beyond what is published runs, however long it waits
        assert set(committed(output)) == set(range(16)) and shard.poll() is None
        write_plan(plan_uri, plan)
        assert shard.wait(timeout=60) == 0, shard.stderr.read() if shard.stderr else ""
    finally:
        shard.kill()
    counts = committed(output)
    assert counts == {mb.id: 1 for mb in plan.mini_batches}
    calls = {int(p.name): p.read_text() for p in (tmp_path / "calls").iterdir()}
    assert calls == {mb.id: "x" for mb in plan.mini_batches}
    outcome = json.loads(output.read_bytes("_prs/shards/0.json"))
    assert outcome["counts"]["miniBatchesSucceeded"] == len(plan.mini_batches)


def test_a_run_publishes_openings_and_merges_the_same_output(tmp_path: Path) -> None:
    """`prs run` end to end on a local output: the plan holds the openings' mini-batches as
    they were published, and the output is every row once, in order."""
    (tmp_path / "data").mkdir()
    rows = "".join(f'{i},"text, {i}"\n' for i in range(3000))
    (tmp_path / "data" / "t.csv").write_text("id,text\n" + rows)
    step = tabular_step(tmp_path, script=SCRIPT, miniBatchSize="1KB",
                        input={"type": "tabular", "uri": "./data"})
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    openings = sorted((step.out / "_prs/plan").glob("opening-*.json"))
    assert openings
    from prs_runner.planning.plan_store import read_plan

    plan = read_plan(str(step.out / "_prs/plan.json"))
    for path in openings:
        document = json.loads(path.read_bytes())
        for row in document["miniBatches"]:
            assert plan.mini_batches[row[0]].shard == 0
    lines = step.output_lines()
    assert [int(line.split()[0]) for line in lines] == list(range(3000))


def tree(folder: Path) -> dict[str, float]:
    """Every path and its mtime, but the lock (`prs run` itself takes it, shards never)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")
            if p.relative_to(folder) != Path("_prs/lock")}


def test_a_run_that_ends_before_the_go_leaves_the_output_as_it_was(
    make_step: MakeStep
) -> None:
    step = make_step("def run(mini_batch):\n    return mini_batch\n", files=4)
    assert step.run().returncode == 0
    before = tree(step.out)
    again = step.run()  # the same step: the result is reused, no shard gets its go
    assert again.returncode == 0 and "reused" in again.stdout, again.stdout + again.stderr
    assert tree(step.out) == before
    for item in (step.root / "data").iterdir():
        item.unlink()
    (step.root / "data").rmdir()
    missing = step.run()
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "prs run: invalid ParallelRunStep:",
        f"  - spec.input.uri: {step.root / 'data'} does not exist"]
    assert tree(step.out) == before


def test_a_shard_that_gets_no_go_exits_having_done_nothing(tmp_path: Path) -> None:
    shard = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.runner_cli", "shard", "--index", "0",
         "--await-go", "--preload"], stdin=subprocess.DEVNULL, capture_output=True,
        cwd=tmp_path, timeout=60)
    assert (shard.returncode, shard.stdout, shard.stderr) == (0, b"", b"")
    assert list(tmp_path.iterdir()) == []


def shard_command_lines(step_file: Path) -> list[str]:
    return [line for line in runner_processes(step_file.parent).values() if " shard " in line]


def test_the_first_shard_starts_before_prs_reads_the_step_and_becomes_shard_0(
    make_step: MakeStep
) -> None:
    step = make_step("import time\ndef run(mini_batch):\n    time.sleep(0.2)\n"
                     "    return mini_batch\n", files=8, nodeCount=2, miniBatchSize="1")
    run = step.start()
    try:
        wait_for(lambda: len({line.split(" --")[1] for line in shard_command_lines(step.step)
                              if "shard" in line}) >= 2, timeout=60)
        lines = set(shard_command_lines(step.step))
        assert any(f"--await-setup --for {step.step}" in line for line in lines), lines
        assert any("--index 1 --await-go" in line and str(step.out) in line for line in lines)
    finally:
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert len(step.output_lines()) == 8
    assert {row["shard"] for row in step.report_rows()} <= {"0", "1"}


def test_a_step_that_does_not_load_leaves_no_shard_behind(tmp_path: Path) -> None:
    step_file = tmp_path / "step.yaml"
    step_file.write_text("apiVersion: parallelrun.io/v1alpha1\nkind: ParallelRunStep\n"
                         "metadata: {name: broken}\nspec: {nodeCount: two}\n")
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step_file)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "spec.code: required" in result.stderr, result.stderr
    wait_for(lambda: not shard_command_lines(step_file), timeout=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.yaml"]
