"""A step reports only work it did: a torn record is not a commit, a merge with holes is not
a success, and reuse requires the output to be exactly what the merge wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.conftest import MakeStep, StepDir

SLOW_ECHO = """
import time
def run(mini_batch):
    time.sleep(0.02)
    return [open(path).read().strip() for path in mini_batch]
"""

ECHO = """
import os
def run(mini_batch):
    mark("calls", len(mini_batch))
    return [os.path.basename(p) + " " + open(p).read().strip() for p in mini_batch]
"""
EXPECTED = [f"item{i:04d}.txt {i}" for i in range(12)]


def merge_again(plan: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prs_runner.commands.runner_cli", "merge",
                           "--plan", plan], capture_output=True, text=True, timeout=60)


def index_lines(step: StepDir) -> dict[int, tuple[Path, int]]:
    """Each mini-batch's index line: its file and the line's offset in it."""
    places = {}
    for index in (step.out / "_prs/commits").glob("*.idx"):
        offset = 0
        for line in index.read_bytes().splitlines(keepends=True):
            places[json.loads(line[9:])["id"]] = (index, offset)
            offset += len(line)
    return places


def payload_place(step: StepDir, mb_id: int) -> tuple[Path, int, int]:
    index, offset = index_lines(step)[mb_id]
    with index.open("rb") as stream:
        stream.seek(offset)
        fields = json.loads(stream.readline()[9:])
    return index.with_suffix(".dat"), fields["offset"], fields["payload_bytes"]


def test_a_torn_index_line_or_payload_runs_again(make_step: MakeStep) -> None:
    """What a power cut can leave: an index cut short, or a whole index line whose payload
    never reached the disk."""
    step = make_step(ECHO, files=12, miniBatchSize="3", allowReuse=False)
    assert step.run().returncode == 0
    data, start, length = payload_place(step, 1)
    index, offset = index_lines(step)[3]
    with index.open("r+b") as stream:
        stream.truncate(offset + 20)  # mini-batch 3's line cut short
    with data.open("r+b") as stream:
        stream.seek(start)
        stream.write(b"\0" * length)  # mini-batch 1's payload lost
    (step.root / "marks/calls").unlink()
    # Drop the success so the rerun resumes instead of starting over.
    (step.out / "_prs/report/job_result.json").unlink()
    rerun = step.run()
    # The resume trusts a whole index line; the merge checks the payload, finds 1 torn, and
    # says so: the next run runs it.
    assert rerun.returncode != 0
    assert step.marks("calls") == ["3"]
    job = step.job_result()
    assert (job["reason"], job["miniBatches"]["pending"]) == ("MiniBatchesNotRun", 1)
    assert (f"(never run, or their record is torn: 1 payload in _prs/commits/{data.stem}.dat "
            "fails its checksum); run the step again") in job["message"]
    again = step.run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert step.marks("calls") == ["3", "3"]
    assert step.output_lines() == EXPECTED


def test_a_merge_with_missing_results_fails_naming_how_many(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=12, miniBatchSize="3")
    assert step.run().returncode == 0
    for index in (step.out / "_prs/commits").glob("*.idx"):
        lines = index.read_bytes().splitlines(keepends=True)
        index.write_bytes(b"".join(line for line in lines
                                   if json.loads(line[9:])["id"] not in (0, 3)))
    merged = merge_again(str(step.out / "_prs/plan.json"))
    assert merged.returncode == 0, merged.stderr  # the outcome is in the report
    job = step.job_result()
    assert (job["status"], job["reason"]) == ("Failed", "MiniBatchesNotRun")
    assert job["message"].startswith("2 of 4 mini-batches have no committed result")
    assert job["miniBatches"]["pending"] == 2
    # Not reusable: the next run runs the two missing mini-batches, and only those.
    (step.root / "marks/calls").unlink()
    rerun = step.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert step.marks("calls") == ["3", "3"]
    assert step.output_lines() == EXPECTED


def test_an_index_damaged_in_place_is_named_by_the_merge(make_step: MakeStep) -> None:
    """Sound records after a torn line do not count (nothing after a torn line ever does):
    the merge says which log is damaged where, and the next run runs those again."""
    step = make_step(ECHO, files=12, miniBatchSize="1", processCountPerNode=1)
    assert step.run().returncode == 0
    (index,) = (step.out / "_prs/commits").glob("*.idx")
    lines = index.read_bytes().splitlines(keepends=True)
    assert len(lines) == 12
    with index.open("r+b") as stream:
        stream.seek(len(lines[0]) + len(lines[1]))
        stream.write(b"XXXX")  # the third line's checksum
    merged = merge_again(str(step.out / "_prs/plan.json"))
    assert merged.returncode == 0, merged.stderr
    job = step.job_result()
    assert (job["reason"], job["miniBatches"]["pending"]) == ("MiniBatchesNotRun", 10)
    assert (f"(never run, or their record is torn: _prs/commits/{index.name} is damaged at "
            "line 3 (the 9 records after it do not count)); run the step again to run just "
            "those") in job["message"]
    (step.root / "marks/calls").unlink()
    rerun = step.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(step.marks("calls")) == 10
    assert step.output_lines() == EXPECTED


def test_reuse_requires_the_output_the_merge_wrote(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=12, miniBatchSize="3")
    assert step.run().returncode == 0
    output = step.out / "parallel_run_step.txt"
    recorded = step.job_result()["output"]
    assert recorded["bytes"] == output.stat().st_size and len(recorded["sha256"]) == 64
    assert "reused" in step.run().stdout  # untouched: reused

    output.write_text("edited\n")
    (step.root / "marks/calls").unlink()
    rerun = step.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "reused" not in rerun.stdout
    assert step.marks("calls") == []  # merged again from the committed results
    assert step.output_lines() == EXPECTED

    output.unlink()
    assert step.run().returncode == 0
    assert step.output_lines() == EXPECTED


def test_job_result_records_the_digest_of_a_csv_output(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=4, miniBatchSize="2", appendRowFileName="scores.txt")
    assert step.run().returncode == 0
    import hashlib

    data = (step.out / "scores.txt").read_bytes()
    recorded = json.loads((step.out / "_prs/report/job_result.json").read_text())["output"]
    assert recorded["sha256"] == hashlib.sha256(data).hexdigest()
    assert recorded["bytes"] == len(data)


def test_a_large_file_in_the_code_folder_is_hashed_without_loading_it(
    make_step: MakeStep
) -> None:
    step = make_step(ECHO, files=2, miniBatchSize="2")
    with (step.root / "src" / "weights.bin").open("wb") as stream:
        stream.truncate(400 << 20)  # 400 MiB, sparse: read as zeros
    # A fresh parent process: its children's peak RSS is this run's alone.
    measure = ("import resource, subprocess, sys; "
               "code = subprocess.run(sys.argv[1:]).returncode; "
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m",
                             "prs_runner.commands.prs_cli", "run", str(step.step)],
                            capture_output=True, text=True, timeout=120)
    code, peak_kib = map(int, result.stdout.split()[-2:])
    assert code == 0, result.stdout + result.stderr
    assert peak_kib < 300 << 10, f"peak RSS {peak_kib} KiB while hashing a 400 MiB file"


def reuse_into(step_dir: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """What the operator's reuse pod does: copy step_dir's result into TARGET."""
    plan = json.loads((step_dir / "_prs/plan.json").read_text())
    plan["step"]["output"]["uri"] = str(target)
    (target / "_prs").mkdir(parents=True)
    (target / "_prs/plan.json").write_text(json.dumps(plan))
    return subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.runner_cli", "reuse", "--plan",
         str(target / "_prs/plan.json"), "--from", str(step_dir), "--from-step", "earlier",
         "--termination-log", str(target / "termination.log")],
        capture_output=True, text=True, timeout=60)


def test_the_reuse_pod_refuses_an_output_changed_after_its_merge(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=4, miniBatchSize="2")
    assert step.run().returncode == 0
    copied = reuse_into(step.out, step.root / "copy")
    assert copied.returncode == 0, copied.stderr
    assert (step.root / "copy/parallel_run_step.txt").read_text() == (
        step.out / "parallel_run_step.txt").read_text()

    (step.out / "parallel_run_step.txt").write_text("edited\n")
    refused = reuse_into(step.out, step.root / "copy2")
    assert refused.returncode == 3
    message = json.loads((step.root / "copy2/termination.log").read_text())
    assert message == {"reason": "ReuseFailed", "message": (
        "invalid ParallelRunStep:\n  - status.reusedFrom: earlier's output "
        "parallel_run_step.txt was changed after its merge; it cannot be reused")}
    assert not (step.root / "copy2/parallel_run_step.txt").exists()


def test_prs_run_reads_the_commits_while_the_shards_run_and_merges_the_same(
    make_step: MakeStep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge's reading of the commit logs is done while the shards run (a core is
    mostly idle then): each look takes what the logs gained, and the output is all of it,
    in order, once."""
    import io

    from prs_runner.execution.local_run import run_local
    from prs_runner.output.commit_log import CommitFollower
    from prs_runner.step.validation import load_step

    step = make_step(SLOW_ECHO, files=60, miniBatchSize="1", processCountPerNode=2)
    taken: list[int] = []
    follow = CommitFollower.follow

    def counting(self: CommitFollower) -> None:
        follow(self)
        taken.append(len(self.found))

    monkeypatch.setattr(CommitFollower, "follow", counting)
    result = run_local(load_step(step.step), stream=io.StringIO()).result
    assert result["status"] == "Succeeded"
    assert any(0 < count < 60 for count in taken), taken  # some, while others still ran
    assert taken == sorted(taken)
    assert step.output_lines() == [str(i) for i in range(60)]
