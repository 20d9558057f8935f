"""`azureml_user.parallel_run.EntryScript` as Azure documents it, read from the worker's
environment (execution/environment.py sets it), so it answers the same under `prs run` and
in a pod. It extends the runner's own `prs_runner.entry_script.EntryScript` (logger,
output_dir, shard_index, process_index, side_inputs) with Azure's names."""

from __future__ import annotations

import os

from prs_runner.entry_script import EntryScript as RunnerEntryScript


class EntryScript(RunnerEntryScript):
    """Azure's helper. Azure's is a singleton; this one holds no state, so every instance
    answers alike."""

    @property
    def node_id(self) -> int:
        """The shard index: a shard is what Azure runs on one node."""
        return self.shard_index

    @property
    def process_name(self) -> str:
        """Azure's name for a worker process: process000, process001, ..."""
        return f"process{self.process_index:03d}"

    @property
    def agent_name(self) -> str:
        """Azure's docs use it as the process name ("processNNN") in log file names."""
        return self.process_name

    @property
    def working_dir(self) -> str:
        """The code folder: the entry script and the files beside it."""
        return os.environ.get("PRS_CODE_ROOT", os.getcwd())

    @property
    def log_dir(self) -> str:
        """A folder this shard's scripts may write their own log files to (name them with
        `agent_name`, as Azure's docs advise): `logs/user/entry_script_log/<node_id>` under
        output_dir, Azure's layout. It exists once asked for. Under output_dir, it travels
        with the output when that is on an object store."""
        folder = os.path.join(self.output_dir, "logs", "user", "entry_script_log",
                              str(self.node_id))
        os.makedirs(folder, exist_ok=True)  # noqa: TID251 (the script's own log folder)
        return folder
