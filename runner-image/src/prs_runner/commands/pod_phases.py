"""The plan and reuse commands of the Kubernetes phases (docs/contract.md §6).

The operator hands the step to the plan pod as JSON in `PRS_STEP` and reads what these
commands print into the termination message; it never reads user data itself."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from prs_runner.execution.local_run import build_plan, prepare_output
from prs_runner.output.merge import JOB_RESULT, REPORT_DIR
from prs_runner.output.run_report_writer import write_run_report_after_merge
from prs_runner.planning.plan import Plan
from prs_runner.planning.plan_store import read_header
from prs_runner.step.spec import SpecError
from prs_runner.step.validation import step_from_document
from prs_runner.storage.code_archive import unpack_code_root
from prs_runner.storage.filesystem import Storage

COPY_CHUNK = 1 << 20


def plan_in_pod(document: dict[str, Any], code_root: str) -> dict[str, Any]:
    """Plan the step and prepare its output; the summary the operator puts in status."""
    spec = dict(document["spec"])
    spec["code"] = {"entryScript": spec["code"]["entryScript"],
                    "sourceDirectory": unpack_code_root(code_root)}
    step = step_from_document({**document, "spec": spec})
    plan = build_plan(step)
    output = Storage(plan.step["output"]["uri"])
    reusable = prepare_output(plan, output) is not None
    return {
        "fingerprint": plan.fingerprint,
        "miniBatches": len(plan.mini_batches),
        "items": plan.total_items,
        "bytes": plan.total_bytes,
        "outputSucceeded": reusable,
        "message": describe_totals(plan),
    }


def describe_totals(plan: Plan) -> str:
    kind = "files" if plan.step["input"]["type"] == "files" else "records"
    return f"{plan.total_items:,} {kind} in {len(plan.mini_batches):,} mini-batches"


def plan_failure(error: SpecError) -> dict[str, Any]:
    return {"reason": "InputInvalid", "message": "; ".join(error.problems)}


def reuse_in_pod(plan_uri: str, source_uri: str, source_step: str) -> dict[str, Any]:
    """Copy an earlier step's output file and report into this step's output."""
    plan = read_header(plan_uri)  # the plan Job left it in this step's output already
    source, target = Storage(source_uri), Storage(plan.step["output"]["uri"])
    earlier = json.loads(source.read_bytes(JOB_RESULT))
    if earlier.get("fingerprint") != plan.fingerprint or earlier.get("status") != "Succeeded":
        raise SpecError([f"status.reusedFrom: {source_step} at {source_uri} no longer holds "
                         f"a succeeded result with fingerprint {plan.fingerprint}"])
    copy_file(source, target, f"{REPORT_DIR}/processed_mini_batches.csv")
    recorded = earlier["output"]
    if recorded.get("file"):
        copied = copy_file(source, target, recorded["file"])
        if recorded.get("sha256") is not None and copied != (recorded.get("bytes"),
                                                             recorded["sha256"]):
            target.delete(recorded["file"])
            raise SpecError([f"status.reusedFrom: {source_step}'s output {recorded['file']} "
                             "was changed after its merge; it cannot be reused"])
    result = {**earlier, "stepName": plan.step_name, "reusedFrom": source_step,
              "output": {**earlier["output"], "uri": plan.step["output"]["uri"]}}
    target.write_atomic(JOB_RESULT, json.dumps(result, indent=2).encode())
    # Every output has its report; the earlier step's shards and logs are not copied, so the
    # page shows the copied rows and result (a failure to write it is one logged line).
    write_run_report_after_merge(target, result, [])
    return result


def copy_file(source: Storage, target: Storage, relative: str) -> tuple[int, str]:
    """Copy RELATIVE from SOURCE to TARGET (published whole); (size, sha256) of what was
    copied."""
    partial = f"{os.path.dirname(relative) or '.'}/.{os.path.basename(relative)}.partial"
    partial = partial.removeprefix("./")
    sha, size = hashlib.sha256(), 0
    with source.open_read(relative) as reader, target.open_write(partial) as writer:
        while chunk := reader.read(COPY_CHUNK):
            writer.write(chunk)
            sha.update(chunk)
            size += len(chunk)
    target.rename(partial, relative)
    return size, sha.hexdigest()
