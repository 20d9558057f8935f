"""Raw descriptors on files of a local output, for the commit logs: one append and one pread
per record are what a mini-batch costs there, so no file object sits in between."""

from __future__ import annotations

import os

from prs_runner.storage.filesystem import Storage
from prs_runner.storage.local_files import create_fresh


def new_log_file(storage: Storage, path: str) -> int:
    """A descriptor on a new file at PATH (below STORAGE, a local folder) to append to;
    its folders are made and checked, and nothing is written through a symlink."""
    assert storage.local is not None, "only a local folder can be appended to"
    target = storage.confined(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    storage.confined(path)  # the folders just made are checked too
    return create_fresh(target)


def read_descriptor(storage: Storage, path: str, flags: int = 0) -> int:
    """A read-only descriptor on the local file at PATH, for pread; never through a symlink.
    FLAGS: more of os.open's."""
    assert storage.local is not None, "object stores are read with ranged reads"
    return os.open(storage.confined(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags)


def mark_file(path: str) -> None:
    """An empty file at PATH (a local path the shard named) unless one is there; never
    through a symlink."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
