"""The operator's progress key, followed as its file changes.

The chart mounts the key from a Secret; when the Secret changes the kubelet swaps the mounted
file in place, so the key is re-read whenever the file's identity (inode, size, mtime)
changes, with no restart. Pods started under the previous key keep their token, so the
previous key is still accepted until the next change."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class ProgressKey:
    path: str  # "" when no file is mounted: the key given at start stays
    key: bytes
    previous: bytes | None = None
    seen: tuple[int, int, int] | None = field(default=None)

    def current(self) -> bytes:
        """The key that signs tokens for new pods."""
        self.refresh()
        return self.key

    def accepted(self) -> tuple[bytes, ...]:
        """Keys a report's token may be made with: the current one, then the previous."""
        self.refresh()
        return (self.key,) if self.previous is None else (self.key, self.previous)

    def refresh(self) -> None:
        if not self.path:
            return
        try:
            stat = os.stat(self.path)
        except OSError:
            return  # mid-swap or unmounted: keep the key we have
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if identity == self.seen:
            return
        with open(self.path, "rb") as stream:
            key = stream.read().strip()
        self.seen = identity
        if key and key != self.key:
            self.previous, self.key = self.key, key
