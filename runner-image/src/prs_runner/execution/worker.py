"""One worker process: imports the entry script, calls init() once, then run() for every
mini-batch its shard supervisor sends, committing each result itself.

Protocol on two inherited pipes, one JSON object per line:
  supervisor -> worker  {"run": ID, "try": N} | {"stop": true}
  worker -> supervisor  {"ready": true} | {"init_failed": ERROR, "lasting": BOOL}
                        | {"done": [{"done": ID, ...counts}, ...], "requests": N}
                        | {"ran": ID} (object stores: run() returned, its commit follows)
                        | {"error": ERROR, "id": ID, "seconds": S}
                        | {"commit_failed": TEXT, "id": ID}
                        | {"stray_command": TEXT} (read no command the shard sends; exits)
                        | {"stopped": true} (after a stop, which the shard sends last)
Messages answer the commands in order. The worker's stdout and stderr are its log file, so a
script's prints cannot break this; a script that writes to either pipe itself gets its
worker replaced (both sides act only on these shapes, worker_messages.runner_event and
runner_command, and the supervisor only on what fits what it sent,
queue_reconciliation.fits).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from prs_runner.azure_names.finder import install as install_azure_names
from prs_runner.entry_script import MiniBatchFiles, RunContext, side_inputs_from_env
from prs_runner.execution.command_queue import CommandQueue
from prs_runner.execution.committer import Committer, Ran
from prs_runner.execution.processes import python_gc
from prs_runner.execution.worker_messages import encode_event, shown
from prs_runner.output.commit_log import CommitLog, life_name
from prs_runner.output.results import SUCCEEDED, ResultHeader
from prs_runner.output.row_encoding import count_returned, encode_result
from prs_runner.output.run_metrics import METRICS_LOGGER, METRICS_MARK_ENV
from prs_runner.planning.plan import MiniBatch
from prs_runner.planning.plan_store import STEP_FILE_NAME, OpeningView, PlanView, read_header
from prs_runner.step.argument_bindings import bind_arguments
from prs_runner.step.uris import parse_uri
from prs_runner.storage.download_cache import DownloadCache
from prs_runner.storage.filesystem import Storage, local_root
from prs_runner.storage.local_descriptors import mark_file
from prs_runner.storage.local_files import write_all
from prs_runner.storage.object_reads import requests_made
from prs_runner.storage.scratch import SCRATCH_ENV

if TYPE_CHECKING:
    from prs_runner.planning.tabular_reading import TableReader

log = logging.getLogger("prs.worker")
# What a fresh process would raise again (the script's code or its imports are wrong): a
# worker whose init() failed so is not started again. A MemoryError or a lost connection
# might heal; these do not.
LASTING_INIT_ERRORS = (ImportError, SyntaxError, NameError)


class UnknownMiniBatch(LookupError):
    """A run command for an id the plan does not have: the shard never sends one."""


def error_info(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def import_entry_script(code_root: str, entry_script: str, arguments: list[str]) -> ModuleType:
    path = os.path.join(code_root, entry_script)
    sys.path.insert(0, os.path.dirname(path))
    sys.argv = [path, *arguments]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import entry script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    install_azure_names()  # azureml.core, azureml_user: only if the script imports them
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"entry script {entry_script} defines no run(mini_batch) function")
    return module




def read_spec(plan_uri: str) -> dict[str, Any]:
    """The resolved spec: from step.json when `prs run` wrote it ahead of the plan (the
    workers start while the input is planned), else from the plan itself (pods)."""
    storage = Storage(plan_uri.rsplit("/", 1)[0])
    try:
        spec: dict[str, Any] = json.loads(storage.read_bytes(STEP_FILE_NAME))
        return spec
    except FileNotFoundError:
        return read_header(plan_uri).step


class MetricTally(logging.Filter):
    """Counts the records of Azure's offline Run (the metrics logger); at the first, marks
    the worker's log as holding metrics (the file the shard names in PRS_METRICS_MARK), so
    that the merge reads only such logs for the report. The mark is on disk before the
    record: a worker that dies after logging, in init() or in shutdown(), is counted too."""

    def __init__(self, mark: str) -> None:
        super().__init__()
        self.mark, self.count = mark, 0

    @classmethod
    def installed(cls, env: Mapping[str, str]) -> MetricTally:
        tally = cls(env.get(METRICS_MARK_ENV, ""))
        logging.getLogger(METRICS_LOGGER).addFilter(tally)
        return tally

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.count and self.mark:
            with contextlib.suppress(OSError):  # never fails the script's call
                mark_file(self.mark)
        self.count += 1
        return True


class Worker:
    def __init__(self, plan_uri: str, shard: int, process: int, code_root: str) -> None:
        self.plan_uri = plan_uri
        self.spec = read_spec(plan_uri)
        self.shard, self.process, self.code_root = shard, process, code_root
        self.batches: PlanView | OpeningView | None = None  # read on the first mini-batch
        self.input_root = ""
        self.output = Storage(self.spec["output"]["uri"])
        # The supervisor names the life, to read what it committed should it die.
        self.log = CommitLog(self.output, os.environ.get("PRS_COMMIT_LIFE")
                             or life_name(shard, str(process)))
        self.summary_only = self.spec["outputAction"] == "summary_only"
        self.row_format = self.spec["appendRowFormat"]
        self.table_reader: TableReader | None = None  # files steps pass local paths instead
        # Files on object storage: downloaded before run(), the next mini-batch meanwhile.
        self.downloads: DownloadCache | None = None
        self.reported = 0  # object-store calls already counted in a report
        self.metrics = MetricTally.installed(os.environ)
        # Input on object storage: the next mini-batches are fetched while run() works.
        self.remote_input = parse_uri(self.spec["input"]["uri"]).remote
        self.remote_files = self.remote_input and self.spec["input"]["type"] == "files"
        self.run_fn: Callable[..., Any] = lambda batch: batch
        self.wants_context = False

    def start(self) -> ModuleType:
        if self.spec["input"]["type"] == "tabular":
            import prs_runner.planning.tabular_reading  # noqa: F401 (pyarrow and pandas: slow, load now)
        code = self.spec["code"]
        input_uri = self.spec["input"]["uri"]
        arguments = bind_arguments(self.spec["arguments"], side_inputs_from_env(),
                                   os.environ.get("PRS_OUTPUT_DIR", ""),
                                   local_root(input_uri) or input_uri)
        module = import_entry_script(self.code_root, code["entryScript"], arguments)
        self.run_fn = module.run
        self.wants_context = len(inspect.signature(module.run).parameters) >= 2
        if callable(getattr(module, "init", None)):
            module.init()
        return module

    def load_plan(self) -> None:
        """On the first mini-batch: the supervisor sends work only once the plan exists."""
        # Read by part as needed: the shard's own, and what it takes from another shard.
        try:
            self.batches = PlanView(self.plan_uri)
            input_uri = self.batches.header.input_uri
        except FileNotFoundError:  # still being cut: shard 0 runs its openings meanwhile
            self.batches = opening = OpeningView(self.plan_uri)
            opening.new_ids()
            input_uri = opening.input_uri
        self.input_root = local_root(input_uri) or input_uri
        if self.remote_files:
            self.downloads = DownloadCache(Storage(input_uri), f"{self.shard}-{self.process}",
                                           within=os.environ.get(SCRATCH_ENV))
        if self.spec["input"]["type"] == "tabular":
            from prs_runner.planning.tabular_reading import TableReader

            self.table_reader = TableReader(Storage(input_uri), self.spec["input"]["format"],
                                            ahead=self.remote_input, partition_format=self.spec[
                                                "input"].get("partitionFormat"))

    def context(self, mb: MiniBatch) -> RunContext:
        return RunContext(
            minibatch_index=mb.id,
            shard_index=self.shard,
            process_index=self.process,
            output_dir=os.environ.get("PRS_OUTPUT_DIR", ""),
            side_inputs=side_inputs_from_env(),
            partition_key_value=dict(mb.table.partition or {}) if mb.table else {},
            dataset=MiniBatchFiles(mb.items),
        )

    def load(self, mb: MiniBatch) -> tuple[Any, str]:
        """The run() argument: local paths, or a DataFrame (and the parser's message about
        rows it had to skip). A files mini-batch of a partition has a table slice too: its
        key values."""
        if self.table_reader is None and self.downloads is not None:
            return self.downloads.paths(mb.id, mb.items), ""
        if self.table_reader is None:
            return [os.path.join(self.input_root, item) for item in mb.items], ""
        assert self.table_reader is not None
        return self.table_reader.read(mb)

    def encode(self, result: Any) -> tuple[bytes, int]:
        if result is None:
            return b"", 0
        if self.summary_only:
            return b"", count_returned(result)
        return encode_result(result, self.row_format)

    def new_requests(self) -> int:
        """Object-store calls since the last report (downloads, reads, the commit)."""
        made = requests_made()
        new, self.reported = made - self.reported, made
        return new

    def prefetch(self, mini_batch_id: int) -> None:
        """Start fetching a mini-batch the supervisor has queued for this worker."""
        mb = self.batches.get(mini_batch_id) if self.batches is not None else None
        if mb is not None and self.downloads is not None:
            self.downloads.start(mini_batch_id, mb.items)
        elif mb is not None and self.table_reader is not None:
            self.table_reader.prefetch(mb)

    def run_one(self, mini_batch_id: int, attempt: int) -> Ran:
        try:
            return self.run_loaded(self.mini_batch(mini_batch_id), attempt)
        finally:
            if self.downloads is not None:
                self.downloads.release(mini_batch_id)

    def mini_batch(self, mb_id: int) -> MiniBatch:
        if self.batches is None:
            self.load_plan()
        if isinstance(self.batches, OpeningView):
            mb = self.batches.get(mb_id)
            if mb is not None:
                return mb
            self.batches = PlanView(self.plan_uri)  # not opened: the plan is whole now
        assert self.batches is not None
        try:
            return self.batches[mb_id]
        except KeyError:  # out of the plan's range (PlanView)
            raise UnknownMiniBatch(mb_id) from None

    def run_loaded(self, mb: MiniBatch, attempt: int) -> Ran:
        started, started_at = time.perf_counter(), time.time()  # a span; the report's timeline
        batch, skipped = self.load(mb)
        args = (batch, self.context(mb)) if self.wants_context else (batch,)
        payload, returned = self.encode(self.run_fn(*args))
        items = mb.item_count
        if returned > items:
            log.warning(
                "run() returned %d elements for %d items in mini-batch %d",
                returned, items, mb.id,
            )
        succeeded = min(returned, items)
        error = item_error(skipped, returned, items)
        header = ResultHeader(
            id=mb.id, shard=self.shard, process=self.process, tries=attempt, items=items,
            succeeded=succeeded, failed=items - succeeded,
            seconds=round(time.perf_counter() - started, 6),
            status=SUCCEEDED, rows=returned, error=error, started=round(started_at, 6),
        )
        log.debug("mini-batch %d, try %d: %d items, %d results in %.3f s",
                  mb.id, attempt, items, returned, header.seconds)
        done = {"done": mb.id, "succeeded": succeeded, "failed": header.failed,
                "rows": returned, "status": header.status}
        return Ran(header, payload, done if error is None else done | {"item_error": error})


def item_error(skipped: str, returned: int, items: int) -> dict[str, str] | None:
    """Why items of a mini-batch whose run() returned failed: rows the parser skipped, or
    fewer elements returned than items given (each missing one counts as a failed item)."""
    if skipped:
        return {"type": "CSVParseError", "message": skipped}
    if returned < items:
        return {"type": "FewerResults",
                "message": f"run() returned {returned} elements for {items} inputs: the other "
                           f"{items - returned} count as failed (return one element per input "
                           "item, or raise to fail the mini-batch)"}
    return None


def serve(worker: Worker, commands: Any, events: int) -> int:
    sending = threading.Lock()  # the commit thread sends too; a long line is not atomic

    def send(message: dict[str, Any]) -> None:
        data = encode_event(message)
        with sending:
            write_all(events, data)

    started = time.perf_counter()
    try:
        module = worker.start()
    except BaseException as exc:
        log.exception("init() failed")
        send({"init_failed": error_info(exc), "lasting": isinstance(exc, LASTING_INIT_ERRORS)})
        return 1
    log.info("init() done in %.2f s", time.perf_counter() - started)
    send({"ready": True})
    committer = Committer(worker.log, send, lambda: {"requests": worker.new_requests()},
                          lambda: queue.has_next())
    queue = CommandQueue(commands, worker.prefetch if worker.remote_input else None,
                         threaded=worker.remote_input or committer.grouped,
                         on_idle=committer.idle)
    stray = ""
    while not stray and (command := queue.next()) is not None and not command.get("stop"):
        stray = command.get("stray") or run_command(worker, command, committer)
    committer.close()
    if stray:
        # Not from the shard: the script wrote to this pipe. What ran before counts; the
        # shard replaces this worker, whose commands cannot be trusted now.
        log.error("read %s from the pipe from the shard, not a command it sent", stray)
    with contextlib.suppress(BrokenPipeError):  # a shard that has stopped reads no more
        if stray:
            send({"stray_command": stray})
        elif command is not None:  # a stop: said, so that one the shard did not send shows
            send({"stopped": True})
    if callable(getattr(module, "shutdown", None)):
        module.shutdown()
    if worker.downloads is not None:
        worker.downloads.close()
    return 1 if stray else 0


def run_command(worker: Worker, command: dict[str, Any], committer: Committer) -> str:
    """Run COMMAND's mini-batch and commit its result (or tell its error); '', or the
    command shown short when the plan has no such mini-batch (the shard sent none)."""
    began = time.perf_counter()
    try:
        ran = worker.run_one(command["run"], command["try"])
    except UnknownMiniBatch:
        return shown(json.dumps(command).encode())
    except BaseException as exc:  # sys.exit() and KeyboardInterrupt in run() too
        log.exception("run() failed on mini-batch %d", command["run"])
        committer.tell({"error": error_info(exc), "id": command["run"],
                        "seconds": round(time.perf_counter() - began, 6)})
        return ""
    committer.commit(ran)
    return ""


def run_worker(
    plan_uri: str, shard: int, process: int, code_root: str, command_fd: int, event_fd: int
) -> int:
    """A worker's whole life, in a process of its own (exec'ed or forked)."""
    python_gc()
    # A forked worker's sys.path was set up before the step's env: honour its PYTHONPATH.
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:0] = [p for p in extra if p not in sys.path]
    for stream in (sys.stdout, sys.stderr):  # prints reach the log even if the worker is killed
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True, write_through=True)
    level = os.environ.get("PRS_LOGGING_LEVEL", "INFO")
    line = f"%(asctime)s %(levelname)s %(name)s [shard {shard} process {process}] %(message)s"
    logging.basicConfig(level=level, stream=sys.stderr, force=True, format=line)
    # Azure's Run writes through the metrics logger: a handler of its own, so that a script
    # that reconfigures logging (basicConfig(force=True)) does not change the lines the
    # run report reads.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(line))
    metrics = logging.getLogger(METRICS_LOGGER)
    metrics.handlers[:], metrics.propagate = [handler], False
    if code_root and os.path.isdir(code_root):
        # As on Azure: the script's relative paths (its arguments, open("labels.txt"))
        # resolve in the code folder, wherever `prs run` was started.
        os.chdir(code_root)
    try:
        worker = Worker(plan_uri, shard, process, code_root)
        with os.fdopen(command_fd, "rb") as commands:
            return serve(worker, commands, event_fd)
    finally:
        logging.shutdown()


def preload(spec: dict[str, Any]) -> None:
    """What every worker of this step will import, loaded once before they are forked.
    Call with the step's env already applied (numpy reads OMP_NUM_THREADS on import)."""
    if spec["input"]["type"] == "tabular":
        preload_data_stack()


def preload_data_stack() -> None:
    import pandas  # noqa: F401 (pyarrow imports it lazily, in the first mini-batch)

    import prs_runner.planning.tabular_reading  # noqa: F401


def main() -> int:
    plan_uri, shard, process, code_root, command_fd, event_fd = sys.argv[1:7]
    return run_worker(plan_uri, int(shard), int(process), code_root, int(command_fd),
                      int(event_fd))


if __name__ == "__main__":
    sys.exit(main())
