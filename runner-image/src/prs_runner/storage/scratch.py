"""A shard's one local scratch folder, under TMPDIR (an emptyDir in pods): what the shard and
its workers keep on local disk for a step on object storage (the staged logs, the side
inputs, the input files of the mini-batches in hand). A worker killed mid-mini-batch cannot
clean up after itself, so the shard removes the whole folder when it ends: a laptop's /tmp
does not fill up run by run with copies of the input and of the side inputs.

A shard killed outright (SIGKILL, the OOM killer, a power cut) removes nothing. So the
shard holds an flock(2) on a lock file in its folder for as long as it lives, and every
shard that makes a scratch folder first removes those of dead shards: a lock it can take is
one the kernel released with its owner's death. A folder without a lock file is never
removed: it is being made, or its shard kept its workers' logs there on purpose and said
where they are."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile

SCRATCH_ENV = "PRS_SCRATCH"  # where a worker makes its own folders
PREFIX = "prs-shard-"
LOCK_NAME = ".owner.lock"  # held by the live shard whose folder it is


class Scratch:
    def __init__(self, label: str) -> None:
        self.label = label
        self.root = ""  # made on first use: a step on local files never has one
        self.lock: int | None = None

    def folder(self, name: str) -> str:
        """The folder NAME inside the scratch folder, made if need be."""
        if not self.root:
            within = tempfile.gettempdir()
            sweep(within)
            self.root = tempfile.mkdtemp(prefix=f"{PREFIX}{self.label}-", dir=within)
            self.lock = held_lock(os.path.join(self.root, LOCK_NAME))
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def remove(self, keep: str | None = None) -> str | None:
        """Remove everything but the folder KEEP (None: all of it); the path of what was
        kept, when there is something there."""
        if not self.root:
            return None
        kept = os.path.join(self.root, keep) if keep else None
        if kept is None or not os.path.isdir(kept):
            shutil.rmtree(self.root, ignore_errors=True)
            self.release()
            return None
        self.release()  # the lock file goes first: a kept folder is never swept
        for name in os.listdir(self.root):
            if name != keep:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return kept

    def release(self) -> None:
        """Unlink the lock file, then let go of the lock: a sweeper that takes it after
        finds no file by that name and leaves the folder alone."""
        if self.lock is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, LOCK_NAME))
            os.close(self.lock)
            self.lock = None


def held_lock(path: str) -> int:
    """A new lock file at PATH, locked; not inherited by the workers the shard starts."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def sweep(within: str) -> list[str]:
    """Remove the scratch folders in WITHIN that dead shards of this user left; their paths."""
    swept = []
    with contextlib.suppress(OSError), os.scandir(within) as entries:
        for entry in entries:
            if not (entry.name.startswith(PREFIX) and owned_folder(entry)):
                continue
            if removed_if_dead(entry.path):
                swept.append(entry.path)
    return swept


def owned_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return (entry.is_dir(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_uid == os.getuid())
    except OSError:
        return False


def removed_if_dead(root: str) -> bool:
    """Remove ROOT if the shard that made it is dead: its lock file is still there and its
    lock can be taken. Removed while held, so no two sweepers remove it twice over."""
    path = os.path.join(root, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: being made, or kept on purpose
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its shard lives
        try:  # the same file still: its shard did not let go of it to keep the folder
            if not os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd)):
                return False
        except FileNotFoundError:
            return False
        shutil.rmtree(root, ignore_errors=True)
        return True
    finally:
        os.close(fd)
