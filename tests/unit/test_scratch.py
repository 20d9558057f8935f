"""The shard's scratch folder: made on first use, removed whole or all but one folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from prs_runner.storage.scratch import Scratch


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_nothing_is_made_until_a_folder_is_asked_for(tmpdir_env: Path) -> None:
    scratch = Scratch("3")
    assert scratch.remove() is None
    assert list(tmpdir_env.iterdir()) == []


def test_folders_share_one_root_named_by_the_shard(tmpdir_env: Path) -> None:
    scratch = Scratch("3")
    side, again = scratch.folder("side"), scratch.folder("side")
    workers = scratch.folder("workers")
    assert side == again and Path(side).is_dir() and Path(workers).is_dir()
    [root] = tmpdir_env.iterdir()
    assert root.name.startswith("prs-shard-3-")
    assert Path(side).parent == root == Path(workers).parent


@pytest.mark.parametrize(("made", "keep", "left"), [
    (["staging", "side", "workers"], None, []),
    (["staging", "side", "workers"], "staging", ["staging"]),
    (["side", "workers"], "staging", []),  # nothing to keep: the root goes too
])
def test_remove_keeps_only_what_it_is_told(tmpdir_env: Path, made: list[str],
                                           keep: str | None, left: list[str]) -> None:
    scratch = Scratch("0")
    for name in made:
        (Path(scratch.folder(name)) / "file").write_text(name)
    kept = scratch.remove(keep)
    roots = list(tmpdir_env.iterdir())
    assert [p.name for r in roots for p in r.iterdir()] == left
    assert kept == (str(roots[0] / keep) if left and keep else None)
    if left:
        assert (roots[0] / "staging" / "file").read_text() == "staging"
