"""Nothing outside a step's output is ever written or deleted, whatever the caller asks, and
nothing is written through a symlink: the storage layer refuses, and `prs` says so in one
line."""

from __future__ import annotations

from pathlib import Path

import pytest

from prs_runner.storage.filesystem import Storage, UnsafePath
from tests.runner.conftest import MakeStep

ECHO = """
import os
def run(mini_batch):
    return [os.path.basename(p) + " " + open(p).read().strip() for p in mini_batch]
"""


@pytest.mark.parametrize("path", ["..", ".", "", "/etc/passwd", "a/../../b", "_prs/../..",
                                  "a\x00b", "a//b"])
def test_paths_that_leave_the_root_are_refused(tmp_path: Path, path: str) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (tmp_path / "keep.txt").write_text("keep\n")
    storage = Storage(str(root))
    for action in (lambda: storage.delete(path), lambda: storage.write_atomic(path, b"x"),
                   lambda: storage.open_write(path), lambda: storage.rename("x", path)):
        with pytest.raises(UnsafePath):
            action()
    assert (tmp_path / "keep.txt").read_text() == "keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "out"]


def test_only_the_runners_own_folder_is_deleted_whole(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "_prs/results").mkdir(parents=True)
    (root / "results.txt").mkdir()  # a user's folder where the output file would go
    (root / "results.txt/mine.csv").write_text("mine\n")
    storage = Storage(str(root))
    with pytest.raises(UnsafePath, match="only the runner's own _prs/ is ever deleted whole"):
        storage.delete("results.txt")
    assert (root / "results.txt/mine.csv").read_text() == "mine\n"
    storage.delete("_prs/results")
    assert not (root / "_prs/results").exists()


def test_a_symlinked_folder_that_leads_out_is_refused(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (root / "_prs").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "_prs/results").symlink_to(elsewhere)
    storage = Storage(str(root))
    with pytest.raises(UnsafePath, match="leads out of"):
        storage.write_atomic("_prs/results/00000000.res", b"x")
    assert list(elsewhere.iterdir()) == []


def test_deleting_a_symlink_deletes_the_link_not_its_target(tmp_path: Path) -> None:
    root, target = tmp_path / "out", tmp_path / "data"
    (root / "_prs").mkdir(parents=True)
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    (root / "_prs/linked").symlink_to(target)
    (root / "out.txt").symlink_to(target / "keep.txt")
    storage = Storage(str(root))
    storage.delete("_prs/linked")
    storage.delete("out.txt")
    assert (target / "keep.txt").read_text() == "keep\n"
    assert not (root / "_prs/linked").exists() and not (root / "out.txt").exists()


PLANTING_ECHO = ECHO + """
def init():
    # Plant links where the merge writes its partial files, after the run has started.
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out")
    victim = os.path.join(os.path.dirname(out), "victim.txt")
    report = os.path.join(out, "_prs", "report")
    os.makedirs(report, exist_ok=True)
    for name in (".parallel_run_step.txt.partial", ".processed_mini_batches.csv.partial"):
        if not os.path.lexists(os.path.join(report, name)):
            os.symlink(victim, os.path.join(report, name))
"""


def test_the_merge_never_writes_through_a_planted_symlink(make_step: MakeStep) -> None:
    step = make_step(PLANTING_ECHO, files=4, miniBatchSize="2")
    victim = step.root / "victim.txt"
    victim.write_text("keep me\n")
    result = step.run()
    assert victim.read_text() == "keep me\n"
    assert result.returncode == 0, result.stdout + result.stderr  # the links were replaced
    assert step.output_lines() == [f"item{i:04d}.txt {i}" for i in range(4)]


def test_an_output_file_name_that_is_a_folder_is_left_alone(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=4, miniBatchSize="2")
    assert step.run().returncode == 0
    (step.out / "parallel_run_step.txt").unlink()
    (step.out / "parallel_run_step.txt").mkdir()
    (step.out / "parallel_run_step.txt/mine.csv").write_text("mine\n")
    result = step.run("--fresh")
    assert result.returncode == 2
    assert result.stderr.startswith("prs run: refusing to delete the folder ")
    assert "Traceback" not in result.stderr
    assert (step.out / "parallel_run_step.txt/mine.csv").read_text() == "mine\n"


def test_a_dot_dot_output_file_name_is_refused_before_anything_runs(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=4, miniBatchSize="2", appendRowFileName="..")
    (step.root / "keep.txt").write_text("keep\n")
    result = step.run("--fresh")
    assert result.returncode == 2
    assert "spec.appendRowFileName: '..' is not a file name in the output folder" in result.stderr
    assert (step.root / "keep.txt").read_text() == "keep\n"
    assert not step.out.exists()
