"""Listing a local folder through links: files under linked folders are listed under the
link's path; a link that loops, or leads to a folder to avoid, is a problem, not a skip."""

from __future__ import annotations

import os
from pathlib import Path

from prs_runner.storage.local_listing import LOOPING_LINK, list_local


def tree(root: Path, links: dict[str, str], files: tuple[str, ...]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    for link, target in links.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target)


def test_linked_folders_are_listed_under_the_links_path(tmp_path: Path) -> None:
    tree(tmp_path, {"in/more": "../common", "in/again": "../common/deep"},
         ("in/a.txt", "common/b.txt", "common/deep/c.txt"))
    entries, problems = list_local(str(tmp_path / "in"))
    assert problems == []
    assert sorted(e.path for e in entries) == [
        "a.txt", "again/c.txt", "more/b.txt", "more/deep/c.txt"]


def test_links_that_lead_round_in_a_circle_end_as_a_problem(tmp_path: Path) -> None:
    """Two sibling folders linking to each other: each is listed again once through the
    other, then the link back to a folder on the way is the loop."""
    tree(tmp_path, {"in/a/to-b": "../b", "in/b/to-a": "../a", "in/up": ".."},
         ("in/a/x.txt", "in/b/y.txt"))
    entries, problems = list_local(str(tmp_path / "in"))
    assert sorted(problems) == [("a/to-b/to-a", LOOPING_LINK), ("b/to-a/to-b", LOOPING_LINK),
                                ("up", LOOPING_LINK)]
    assert sorted(e.path for e in entries) == ["a/to-b/y.txt", "a/x.txt", "b/to-a/x.txt",
                                               "b/y.txt"]


def test_a_link_into_or_around_a_folder_to_avoid_is_a_problem(tmp_path: Path) -> None:
    tree(tmp_path, {"in/out": "../runs/out", "in/runs": "../runs", "in/other": "../other"},
         ("in/a.txt", "runs/out/result.txt", "other/o.txt"))
    avoid = os.path.realpath(tmp_path / "runs/out")
    entries, problems = list_local(str(tmp_path / "in"), (avoid,))
    assert sorted(path for path, _ in problems) == ["out", "runs"]
    assert all(why.startswith(f"a link into {avoid}, the step's output") for _, why in problems)
    assert sorted(e.path for e in entries) == ["a.txt", "other/o.txt"]


def test_a_link_to_a_file_in_a_folder_to_avoid_is_a_problem_of_that_file(tmp_path: Path) -> None:
    tree(tmp_path, {"in/prev.txt": "../out/result.txt", "in/fine.txt": "../other/o.txt"},
         ("in/a.txt", "out/result.txt", "other/o.txt"))
    entries, problems = list_local(str(tmp_path / "in"), (os.path.realpath(tmp_path / "out"),))
    assert [(path, why.split(":")[0]) for path, why in problems] == [
        ("prev.txt", "a link to a file in the step's output")]
    assert sorted(e.path for e in entries) == ["a.txt", "fine.txt"]
