"""What workers write as files beside their results: their logs, and what run() puts in
`output_dir` (EntryScript().output_dir). On a local output both go straight into it. On an
object store they go to a local folder first (a log is appended line by line, and objects
cannot be appended to), uploaded into the output when the shard ends."""

from __future__ import annotations

import logging
import os
import shutil

from prs_runner.storage.filesystem import Storage
from prs_runner.storage.scratch import Scratch

log = logging.getLogger(__name__)
STAGING_FOLDER = "staging"  # in the shard's scratch folder


class LocalStaging:
    def __init__(self, output: Storage, scratch: Scratch) -> None:
        self.output, self.scratch = output, scratch
        self.staged: dict[str, str] = {}  # output path -> local file
        self.output_folder = ""  # the local output_dir of an object-store output

    def local_folder(self) -> str:
        return self.scratch.folder(STAGING_FOLDER)

    def path(self, relative: str) -> str:
        """The local file to append the log RELATIVE (below the output) to."""
        if self.output.local is not None:
            return self.output.confined(relative)
        logs = os.path.join(self.local_folder(), "logs")
        os.makedirs(logs, exist_ok=True)
        return self.staged.setdefault(relative, os.path.join(logs, str(len(self.staged))))

    def output_dir(self) -> str | None:
        """The folder run() writes its own files to; None: the output itself (local)."""
        if self.output.local is not None:
            return None
        if not self.output_folder:
            self.output_folder = os.path.join(self.local_folder(), "output")
            os.makedirs(self.output_folder, exist_ok=True)
        return self.output_folder

    def publish(self) -> bool:
        """Upload the staged logs and run()'s own files (what cannot be uploaded is said and
        kept locally, not fatal: the results are committed already); whether all were."""
        written, uploaded = {}, True
        if self.output_folder:
            for folder, _dirs, files in os.walk(self.output_folder):
                for name in files:
                    local = os.path.join(folder, name)
                    relative = os.path.relpath(local, self.output_folder).replace(os.sep, "/")
                    if relative.split("/")[0] != "_prs":  # the runner's own folder
                        written[relative] = local
        for relative, local in {**written, **self.staged}.items():
            if not os.path.exists(local):
                continue
            try:
                with open(local, "rb") as source, self.output.open_write(relative) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            except OSError as error:
                uploaded = False
                log.warning("could not upload the log %s to %s: %s (kept at %s)", relative,
                            self.output.uri, error, local)
        return uploaded
