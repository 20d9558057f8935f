"""Raw writes of local files, where a mini-batch's commit pays for every call: a new file is
never written through a symlink, and a whole one appears at once (an unnamed file linked
when complete, else the caller's write-then-rename)."""

from __future__ import annotations

import ctypes
import functools
import os


def open_append_log(path: str) -> int:
    """A descriptor that appends to the log file PATH (created, with its folder, if new)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)


AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400


def create_fresh(target: str) -> int:
    """A descriptor on a new file at TARGET (O_EXCL, O_NOFOLLOW): an existing file or a
    symlink there is unlinked first, so nothing is ever written through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(target, flags, 0o644)
    except FileExistsError:
        os.unlink(target)
        return os.open(target, flags, 0o644)


def write_file(target: str, data: bytes) -> None:
    """Raw descriptors: this runs once per mini-batch, where every call counts."""
    try:
        fd = create_fresh(target)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = create_fresh(target)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def publish_unnamed(target: str, data: bytes) -> bool:
    """Write into an unnamed file (O_TMPFILE) and link it at `target` once complete: atomic
    like write-then-rename, and on ext4 several times cheaper, which matters for one commit
    per mini-batch. False when that is not possible here (other OS or filesystem, or
    `target` exists and must be replaced): the caller then writes and renames."""
    if not hasattr(os, "O_TMPFILE") or os.path.exists(target):
        return False
    folder = os.path.dirname(target)
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return publish_unnamed(target, data)
    except OSError:
        return False  # O_TMPFILE unsupported by this filesystem
    try:
        write_all(fd, data)
        return link_descriptor(fd, target)
    finally:
        os.close(fd)


def link_descriptor(fd: int, target: str) -> bool:
    libc = _libc()
    if libc is None:
        return False
    source = f"/proc/self/fd/{fd}".encode()
    return bool(libc.linkat(AT_FDCWD, source, AT_FDCWD, target.encode(), AT_SYMLINK_FOLLOW) == 0)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
