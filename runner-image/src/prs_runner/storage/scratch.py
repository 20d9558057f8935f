"""A shard's one local scratch folder, under TMPDIR (an emptyDir in pods): what the shard and
its workers keep on local disk for a step on object storage (the staged logs, the side
inputs, the input files of the mini-batches in hand). A worker killed mid-mini-batch cannot
clean up after itself, so the shard removes the whole folder when it ends: a laptop's /tmp
does not fill up run by run with copies of the input and of the side inputs."""

from __future__ import annotations

import os
import shutil
import tempfile

SCRATCH_ENV = "PRS_SCRATCH"  # where a worker makes its own folders


class Scratch:
    def __init__(self, label: str) -> None:
        self.label = label
        self.root = ""  # made on first use: a step on local files never has one

    def folder(self, name: str) -> str:
        """The folder NAME inside the scratch folder, made if need be."""
        if not self.root:
            self.root = tempfile.mkdtemp(prefix=f"prs-shard-{self.label}-")
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
            return None
        for name in os.listdir(self.root):
            if name != keep:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return kept
