"""`prs run`: survey and plan the input, run every shard as a local supervisor process
(local_shards), merge. The shards and the merge are the same code the pods run."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

from prs_runner.execution.cpu_share import local_process_count
from prs_runner.execution.local_shards import ShardRunner, start_shards
from prs_runner.execution.steals import STEALS_DIR
from prs_runner.output.commit_log import CommitFollower
from prs_runner.output.committed_set import CommittedSet
from prs_runner.output.merge import JOB_RESULT, REPORT_DIR, merge_results, read_shard_outcomes
from prs_runner.output.run_report_writer import REPORT_PAGE, write_run_report_after_merge
from prs_runner.planning.fingerprint import compute_fingerprint
from prs_runner.planning.mltable import MLTABLE_FILE, parse_mltable
from prs_runner.planning.plan import MiniBatch, Plan, PlanHeader, plan_file_partitions, plan_files
from prs_runner.planning.plan_store import (
    PLAN_FILE,
    STEP_FILE_NAME,
    read_header,
    read_plan,
    write_opening,
    write_plan,
)
from prs_runner.planning.tabular_formats import guess_format
from prs_runner.step.spec import SpecError, Step
from prs_runner.step.validation import check_overlaps
from prs_runner.storage.code_archive import code_digests
from prs_runner.storage.filesystem import FileEntry, ListingError, Storage, local_root
from prs_runner.storage.object_reads import requests_made
from prs_runner.storage.output_lock import CLAIM_STALE, CLAIMS, LOCK_FILE, output_lock

Publish = Callable[[list[MiniBatch]], None]
PLAN_PARTS = "_prs/plan"  # its parts (planning.plan_store)
STEP_FILE = f"_prs/{STEP_FILE_NAME}"


@dataclass(frozen=True)
class RunResult:
    result: dict[str, Any]
    reused: bool
    report: str | None = None  # the HTML page's path or URI, when there is one


def resolve_spec(step: Step) -> dict[str, Any]:
    """The spec with every local path made absolute, as the workers need it."""
    spec = json.loads(json.dumps(step.spec))
    code = spec["code"]
    if code.get("configMap"):
        raise SpecError(["spec.code.configMap: works only on a cluster; "
                         "prs run needs code.sourceDirectory or code.path"])
    for key in ("sourceDirectory", "path"):
        if code.get(key):
            code[key] = step.resolve_local(code[key])
    code["sourceDirectory"] = code.pop("path", None) or code["sourceDirectory"]
    check_entry_script(code)
    spec["input"]["uri"] = step.resolve_local(spec["input"]["uri"])
    spec["output"]["uri"] = step.resolve_local(spec["output"]["uri"])
    for side in spec["sideInputs"]:
        side["uri"] = step.resolve_local(side["uri"])
    if spec["processCountPerNode"] is None:
        spec["processCountPerNode"] = local_process_count(spec["nodeCount"])[0]
    problems = check_overlaps(spec)
    if problems:
        raise SpecError(problems)
    return spec  # type: ignore[no-any-return]


def check_entry_script(code: dict[str, Any]) -> None:
    """A local code folder holds the entry script: said before anything is planned or
    written, not by every worker's init() failing."""
    folder = code.get("sourceDirectory") or ""
    if "://" in folder:
        return  # on object storage: fetched by the workers
    if not os.path.isdir(folder):
        raise SpecError([f"spec.code.sourceDirectory: {folder} is not a folder"])
    if not os.path.isfile(os.path.join(folder, code["entryScript"])):
        raise SpecError([f"spec.code.entryScript: {code['entryScript']} is not in "
                         f"spec.code.sourceDirectory ({folder})"])


@dataclass(frozen=True)
class Survey:
    """What planning learns before cutting the input: cheap, so `prs run` can decide about
    earlier results and start its workers while the (possibly long) cutting runs."""

    spec: dict[str, Any]  # resolved: absolute paths, the input format known
    listing: list[FileEntry]
    fingerprint: str
    input_root: str


def survey_step(step: Step) -> Survey:
    spec = resolve_spec(step)
    reach_output(spec["output"]["uri"])
    output_root = local_root(spec["output"]["uri"])
    avoid = () if output_root is None else (os.path.realpath(output_root),)
    listing = list_for(spec["input"]["uri"], spec["input"].get("glob"), "spec.input.uri",
                       avoid)
    if not listing:
        raise SpecError([f"spec.input.uri: no input files under {spec['input']['uri']}"
                         + (f" match glob {spec['input']['glob']!r}" if spec["input"].get("glob")
                            else "")])
    side_listings: dict[str, list[FileEntry]] = {}
    for side in spec["sideInputs"]:
        side_listings[side["name"]] = list_for(side["uri"], None,
                                               f"spec.sideInputs[{side['name']}].uri", avoid)
        if not side_listings[side["name"]]:
            raise SpecError([f"spec.sideInputs[{side['name']}].uri: nothing at {side['uri']}"])
    if spec["input"]["type"] == "tabular" and any(e.path == MLTABLE_FILE for e in listing):
        listing = apply_mltable(spec, listing)
    if spec["input"]["type"] == "tabular":
        spec["input"]["format"] = resolve_format(spec, listing)
    fingerprint = compute_fingerprint(
        spec, code_digests(spec["code"]["sourceDirectory"]), listing, side_listings
    )
    return Survey(spec, listing, fingerprint, input_folder(spec["input"]["uri"]))


def apply_mltable(spec: dict[str, Any], listing: list[FileEntry]) -> list[FileEntry]:
    """An Azure MLTable folder: the files its paths name, read as it says (SPEC's format)."""
    table = parse_mltable(Storage(spec["input"]["uri"]).read_bytes(MLTABLE_FILE).decode())
    given = spec["input"].get("format")
    if given and given != table.format:
        raise SpecError([f"spec.input.format: {given}, but the MLTable reads {table.format}; "
                         "leave format out or make them agree"])
    spec["input"]["format"] = table.format
    chosen = [e for e in listing if table.selects(e.path)]
    if not chosen:
        raise SpecError([f"spec.input.uri: the MLTable's paths match no file under "
                         f"{spec['input']['uri']}"])
    return chosen


def list_for(uri: str, glob: str | None, field: str,
             avoid: Sequence[str] = ()) -> list[FileEntry]:
    """The listing of a spec field's URI, through no link into AVOID (real paths); what
    cannot be listed is a SpecError naming it."""
    try:
        return Storage(uri, patient=False).list_files(glob, avoid)
    except FileNotFoundError:
        raise SpecError([f"{field}: {uri} does not exist"]) from None
    except ListingError as error:
        raise SpecError([f"{field}: {error}"]) from None


def reach_output(uri: str) -> None:
    """One quick call to an object store before anything is planned: a wrong endpoint or
    credential is one line at once, not a minute of retries first."""
    output = Storage(uri, patient=False)
    if output.local is None:
        output.list_names("_prs")


def cut_plan(step: Step, survey: Survey, publish: Publish | None = None) -> Plan:
    """The plan; PUBLISH gets its first mini-batches while the rest is cut (tabular)."""
    spec = survey.spec
    batches = plan_mini_batches(step, spec, survey.input_root, survey.listing, publish)
    return Plan(
        step_name=step.name, fingerprint=survey.fingerprint, input_uri=survey.input_root,
        node_count=spec["nodeCount"], mini_batches=tuple(batches),
        step=spec, side_inputs={s["name"]: s["uri"] for s in spec["sideInputs"]},
        storage_requests=requests_made(),
    )


def build_plan(step: Step) -> Plan:
    return cut_plan(step, survey_step(step))


def input_folder(uri: str) -> str:
    """What the listed paths are relative to: the URI, or its folder when it is one file."""
    if Storage(uri, patient=False).is_file():
        return uri.rstrip("/").rsplit("/", 1)[0] or "/"
    return uri


def resolve_format(spec: dict[str, Any], listing: list[FileEntry]) -> str:
    found = spec["input"].get("format") or guess_format(e.path for e in listing)
    if found is None:
        raise SpecError(["spec.input.format: cannot tell csv, parquet or jsonl from the file "
                         f"names under {spec['input']['uri']}; set input.format"])
    return str(found)


def plan_mini_batches(
    step: Step, spec: dict[str, Any], input_root: str, listing: list[FileEntry],
    publish: Publish | None = None,
) -> list[MiniBatch]:
    size = step.mini_batch_size
    keys, partition_format = spec["input"].get("partitionKeys"), spec["input"].get(
        "partitionFormat")
    if spec["input"]["type"] != "tabular" and keys:
        return plan_file_partitions(listing, keys, partition_format, spec["nodeCount"])
    if spec["input"]["type"] != "tabular":
        assert size.count is not None  # validation: files take a count
        return plan_files(listing, size.count, spec["nodeCount"])
    from prs_runner.planning.tabular_scan import Openings, plan_tabular

    openings = None if publish is None else Openings(
        publish, sum(e.size for e in listing), spec["nodeCount"])
    return plan_tabular(Storage(input_root), listing, spec["input"]["format"], size,
                        keys or [], spec["nodeCount"], openings, partition_format)


def earlier_result(output: Storage) -> dict[str, Any] | None:
    try:
        return json.loads(output.read_bytes(JOB_RESULT))  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def earlier_fingerprint(output: Storage) -> str | None:
    try:
        return read_header(output.uri_of(PLAN_FILE)).fingerprint
    except (FileNotFoundError, ValueError, KeyError):
        return None


def start_over(output: Storage, spec: dict[str, Any]) -> None:
    """Everything under _prs/ but the lock (its holder is this run), and the output file."""
    for name in output.list_names("_prs", folders=True):
        if f"_prs/{name}" not in (LOCK_FILE, CLAIMS):
            output.delete(f"_prs/{name}")
    output.delete(spec["appendRowFileName"])


def reusable_result(
    output: Storage, spec: dict[str, Any], fingerprint: str, fresh: bool
) -> dict[str, Any] | None:
    """The earlier result, when it is a success of the same step and may be reused."""
    earlier = earlier_result(output)
    if earlier is None or fresh or not spec["allowReuse"]:
        return None
    same = earlier.get("status") == "Succeeded" and earlier.get("fingerprint") == fingerprint
    return earlier if same and output_intact(output, earlier) else None


def output_intact(output: Storage, earlier: dict[str, Any]) -> bool:
    """The output file is exactly what the earlier merge wrote (size, then sha256)."""
    recorded = earlier.get("output") or {}
    if not recorded.get("file"):
        return True  # summary_only: nothing to check
    if recorded.get("sha256") is None:
        return False  # written before digests were recorded: merge again
    found = output.digest(recorded["file"])
    return found == (recorded.get("bytes"), recorded["sha256"])


def clear_for_run(output: Storage, spec: dict[str, Any], fingerprint: str, fresh: bool,
                  keep_plan: bool = False) -> bool:
    """Keep the committed results of the same step (resume, or merge again when a reusable
    result's output file was changed); otherwise start over. The old plan goes too (a shard
    must only ever see this run's), and the steal marks made under it (they name its
    shards: a rerun with fewer crashed on a mark of one it no longer has), unless
    KEEP_PLAN: it is this run's (kept_plan). Whether the results were kept."""
    earlier = earlier_result(output)
    rerun = earlier is not None and earlier.get("status") == "Succeeded" and not spec["allowReuse"]
    kept = not (fresh or rerun or earlier_fingerprint(output) != fingerprint)
    if not kept:
        start_over(output, spec)
    plan = () if kept and keep_plan else (PLAN_FILE, PLAN_PARTS, STEALS_DIR)
    for stale in ("_prs/shards", JOB_RESULT, REPORT_PAGE, *plan, STEP_FILE):
        output.delete(stale)
    return kept


def kept_plan(output: Storage, spec: dict[str, Any], fingerprint: str) -> PlanHeader | None:
    """The stored plan, when a resume can use it as it is: the same fingerprint (the input's
    listing, the code, what changes results) and the same resolved spec (shard ranges and
    every setting the shards run with). Planning is deterministic, so cutting the input
    again would give the same plan: a rerun lists the input (to know it is unchanged) but
    does not cut it again (a CSV is not scanned again)."""
    try:
        header = read_header(output.uri_of(PLAN_FILE))
    except (FileNotFoundError, ValueError, KeyError):
        return None
    same = header.fingerprint == fingerprint and header.step == spec
    return header if same else None


def prepare_output(plan: Plan, output: Storage, fresh: bool = False) -> dict[str, Any] | None:
    """Get the output ready for this plan (the plan pod): the earlier result when it can be
    reused as is; otherwise resume or start over, and write the plan."""
    earlier = reusable_result(output, plan.step, plan.fingerprint, fresh)
    if earlier is not None:
        return earlier
    clear_for_run(output, plan.step, plan.fingerprint, fresh)
    write_plan(output.uri_of(PLAN_FILE), plan)
    return None


def run_local(step: Step, fresh: bool = False, stream: TextIO = sys.stderr,
              shards: ShardRunner | None = None) -> RunResult:
    """Start the shards (they import meanwhile) unless SHARDS were, survey, lock the
    output, give the shards the go (their workers import and init()), cut the input into
    mini-batches (the first ones run as they are cut), hand the plan over, merge."""
    started = time.time()
    runner = shards or start_shards(step, stream)
    try:
        survey = survey_step(step)
        output = Storage(survey.spec["output"]["uri"])
        with output_lock(output, on_lost=partial(stop_taken_over, output.uri, stream)):
            return run_locked(step, survey, output, fresh, started, runner)
    finally:
        runner.cancel()  # those still waiting: the run ended before their go


def stop_taken_over(uri: str, stream: TextIO) -> None:
    """Another run took the output over (it judged this one dead): stop as on SIGTERM, the
    shards' outcomes written, rather than write beside it."""
    print(f"prs: another run took over {uri}: it removed this run's claim, untouched for "
          f"{CLAIM_STALE:.0f} s (was this run stopped, or cut off from the store?); "
          "stopping", file=stream, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def run_locked(step: Step, survey: Survey, output: Storage, fresh: bool, started: float,
               runner: ShardRunner) -> RunResult:
    earlier = reusable_result(output, survey.spec, survey.fingerprint, fresh)
    if earlier is not None:
        if "index.html" not in output.list_names(REPORT_DIR):
            # merged before runs had a page, or its writing failed then: built now, as the
            # merge would have (a failure is said in one line and changes nothing)
            write_run_report_after_merge(
                output, earlier, read_shard_outcomes(output, survey.spec["nodeCount"]))
        return RunResult(earlier, reused=True, report=report_page(output))
    header = None if fresh else kept_plan(output, survey.spec, survey.fingerprint)
    if not clear_for_run(output, survey.spec, survey.fingerprint, fresh, header is not None):
        header = None
    output.write_atomic(STEP_FILE, json.dumps(survey.spec).encode())
    runner.go(survey.spec, output.uri_of(PLAN_FILE))
    plan = None
    try:
        if header is None:
            plan = cut_plan(step, survey, opening_writer(output, survey))
            header = write_plan(output.uri_of(PLAN_FILE), plan)
    except BaseException:
        runner.stop_all()
        raise
    runner.progress.total = header.mini_batch_count
    count = header.mini_batch_count
    runner.progress.resumed = CommittedSet(output, count).refresh().count_in(range(count))
    # A local output's commit logs are read as they grow, so the merge reads only the last.
    follower = CommitFollower(output) if output.local is not None else None
    override = runner.run(header.mini_batch_count, follower.follow if follower else None)
    outcomes = read_shard_outcomes(output, header.node_count)
    plan = plan or read_plan(output.uri_of(PLAN_FILE))
    result = merge_results(plan, output, outcomes, started, override,
                           follower.commits if follower else None)
    return RunResult(result, reused=False, report=report_page(output))


def report_page(output: Storage) -> str | None:
    """Where the run's HTML page is, or None when it could not be written (said then)."""
    if "index.html" not in output.list_names(REPORT_DIR):
        return None
    return output.uri_of(REPORT_PAGE)


def opening_writer(output: Storage, survey: Survey) -> Publish | None:
    """Openings on a local output only: shard 0 looks for them every few milliseconds while
    it waits for the plan, which on an object store would be a billed listing each time."""
    if output.local is None:
        return None
    return partial(write_opening, output.uri_of(PLAN_FILE), survey.input_root)
