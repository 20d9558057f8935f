"""Where workers write their logs: into the output's `_prs/logs/` on a local folder; on an
object store into a local folder first (a log is appended line by line, and objects cannot
be appended to), uploaded when the shard ends."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from prs_runner.storage.filesystem import Storage

log = logging.getLogger(__name__)


class LogFiles:
    def __init__(self, output: Storage, label: str) -> None:
        self.output, self.label = output, label
        self.staged: dict[str, str] = {}  # output path -> local file
        self.folder = ""

    def path(self, relative: str) -> str:
        """The local file to append the log RELATIVE (below the output) to."""
        if self.output.local is not None:
            return self.output.confined(relative)
        if not self.folder:
            self.folder = tempfile.mkdtemp(prefix=f"prs-logs-{self.label}-")
        return self.staged.setdefault(relative, os.path.join(self.folder, str(len(self.staged))))

    def publish(self) -> None:
        """Upload the staged logs (a log that cannot be uploaded is said, not fatal)."""
        for relative, local in self.staged.items():
            if not os.path.exists(local):
                continue
            try:
                with open(local, "rb") as source, self.output.open_write(relative) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            except OSError as error:
                log.warning("could not upload the log %s to %s: %s (kept at %s)", relative,
                            self.output.uri, error, local)
