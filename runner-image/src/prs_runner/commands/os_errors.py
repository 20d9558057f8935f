"""An OSError as one line a person can act on: the file, what happened, what to do."""

from __future__ import annotations

import errno

from prs_runner.storage.filesystem import ListingError, UnsafePath
from prs_runner.storage.object_stores import StorageError


def describe_os_error(error: OSError) -> str:
    """One line naming the file and what to do, instead of a traceback."""
    if isinstance(error, UnsafePath | ListingError | StorageError):
        return str(error)
    where = f"{error.filename}: " if error.filename else ""
    hint = {
        errno.ENOSPC: "free some space, then run again to resume",
        errno.EDQUOT: "free some space, then run again to resume",
        errno.EACCES: "check the permissions, or pass another --output-uri",
        errno.EPERM: "check the permissions, or pass another --output-uri",
        errno.EROFS: "the filesystem is read-only; pass another --output-uri",
        errno.ELOOP: "a symbolic link is in the way; the runner never writes through one",
        errno.ENOTDIR: "a file is where a folder must be",
        errno.EISDIR: "a folder is where a file must be",
    }.get(error.errno or 0, "fix it, then run again to resume")
    return f"{where}{error.strerror or error}; {hint}"
