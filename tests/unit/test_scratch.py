"""The shard's scratch folder: made on first use, removed whole or all but one folder; those
of dead shards are removed by the next shard's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prs_runner.storage.scratch import LOCK_NAME, PREFIX, Scratch, sweep


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


# A shard in a process of its own, as in a run: it makes its scratch folder, puts a file in
# it, may keep its logs as a stopped shard does, prints the folder's path and then sleeps.
SHARD = """
import sys, time
from prs_runner.storage.scratch import Scratch
scratch = Scratch(sys.argv[1])
with open(scratch.folder("side") + "/model.bin", "w") as stream:
    stream.write("weights")
if sys.argv[2] == "keep":
    scratch.folder("staging")
    scratch.remove(keep="staging")
print(scratch.root, flush=True)
time.sleep(3600)
"""


StartShard = Callable[[str, str], tuple[subprocess.Popen[str], Path]]


@pytest.fixture
def shards(tmpdir_env: Path) -> Iterator[StartShard]:
    started: list[subprocess.Popen[str]] = []

    def start(label: str, mode: str = "") -> tuple[subprocess.Popen[str], Path]:
        environment = {**os.environ, "TMPDIR": str(tmpdir_env)}
        process = subprocess.Popen([sys.executable, "-c", SHARD, label, mode], text=True,
                                   stdout=subprocess.PIPE, env=environment)
        started.append(process)
        assert process.stdout is not None
        return process, Path(process.stdout.readline().strip())

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_new_scratch_folder_removes_those_of_killed_shards_only(
    tmpdir_env: Path, shards: Callable[[str, str], tuple[subprocess.Popen[str], Path]]
) -> None:
    killed, killed_root = shards("0", "")
    live, live_root = shards("1", "")
    stopped, kept_root = shards("2", "keep")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stopped.send_signal(signal.SIGKILL)
    stopped.wait()
    assert (killed_root / "side" / "model.bin").is_file()  # what SIGKILL leaves

    scratch = Scratch("0")
    scratch.folder("side")
    assert not killed_root.exists()
    assert (live_root / "side" / "model.bin").is_file()  # its shard lives
    assert [p.name for p in kept_root.iterdir()] == ["staging"]  # its shard said where
    assert sorted(p.name for p in tmpdir_env.iterdir()) == sorted(
        [live_root.name, kept_root.name, Path(scratch.root).name])
    live.send_signal(signal.SIGKILL)
    live.wait()
    scratch.remove()
    Scratch("3").folder("side")  # the next shard's
    assert not live_root.exists() and not Path(scratch.root).exists()
    assert kept_root.is_dir()


def test_the_sweep_follows_no_symlink_and_leaves_folders_without_a_lock_file(
    tmpdir_env: Path, tmp_path_factory: pytest.TempPathFactory,
    shards: StartShard
) -> None:
    killed, killed_root = shards("0", "")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    moved = elsewhere / "dead-shard"
    killed_root.rename(moved)  # a dead shard's folder, lock and all, outside TMPDIR...
    (tmpdir_env / f"{PREFIX}9-link").symlink_to(moved)  # ...named by a link inside it
    (tmpdir_env / f"{PREFIX}5-being-made").mkdir()
    (tmpdir_env / f"{PREFIX}6-a-file").write_text("not a folder")
    assert sweep(str(tmpdir_env)) == []
    assert (moved / LOCK_NAME).is_file() and (moved / "side" / "model.bin").is_file()
    assert (tmpdir_env / f"{PREFIX}5-being-made").is_dir()
    assert (tmpdir_env / f"{PREFIX}6-a-file").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can remove another user's folders, "
                    "the case the owner check guards against")
def test_root_sweeps_its_own_dead_shards_only(tmpdir_env: Path, shards: StartShard) -> None:
    """`prs run` as root (a CI job, a container) shares /tmp with other users' dead shards,
    whose folders it could remove: the sweep leaves every folder it does not own."""
    theirs, theirs_root = shards("0", "")
    mine, mine_root = shards("1", "")
    for process in (theirs, mine):
        process.send_signal(signal.SIGKILL)
        process.wait()
    for path in (theirs_root, *theirs_root.rglob("*")):
        os.chown(path, 65534, 65534, follow_symlinks=False)  # nobody's
    assert sweep(str(tmpdir_env)) == [str(mine_root)]
    assert (theirs_root / "side" / "model.bin").is_file() and not mine_root.exists()
