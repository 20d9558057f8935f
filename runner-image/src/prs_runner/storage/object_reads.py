"""Reading an object of an object store as a seekable file, and counting the remote calls
this process makes (workers report theirs, so that a step can say how many it made)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

from prs_runner.storage.object_stores import StorageError, remote_failure

# Remote calls made by this process, by kind (list, head, get, put, copy, delete): workers
# report theirs with each mini-batch, so that a step can say how many requests it made.
REQUESTS: Counter[str] = Counter()


def requests_made() -> int:
    """Remote calls this process made so far."""
    return sum(REQUESTS.values())


class ObjectReader(io.RawIOBase):
    """An object as a seekable raw file: ranged reads that stop at its size (GCS refuses a
    range that starts at the end), failures as one line naming the object."""

    def __init__(self, raw: Any, uri: str) -> None:
        self.raw, self.uri, self.position = raw, uri, 0
        self.length = raw.size()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        data = self.read_at(self.position, len(buffer))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.raw.close()
        super().close()

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to SIZE bytes at OFFSET, one ranged read; safe from several threads at once
        (the position is not used)."""
        wanted = min(size, self.length - offset)
        if wanted <= 0:
            return b""
        REQUESTS["get"] += 1
        try:
            return self.raw.read_at(wanted, offset)  # type: ignore[no-any-return]
        except Exception as error:  # pyarrow raises OSError and ArrowInvalid alike
            raise StorageError(remote_failure(self.uri, error)) from error


def object_reads(stream: IO[bytes]) -> Callable[[int, int], bytes] | None:
    """read_at(offset, size) of a stream open_seekable gave for an object (ranged reads from
    several threads at once pay off there: each is a round trip); None for anything else."""
    raw = getattr(stream, "raw", None)
    return raw.read_at if isinstance(raw, ObjectReader) else None
