"""Where a plan is stored, and how a shard or a worker reads only what it needs.

`_prs/plan.json` is the header: the step, the fingerprint, the totals, where each shard's
range of mini-batch ids starts and where each part starts. The mini-batches are in parts,
`_prs/plan/<first id>.json`, of at most PART_MINI_BATCHES mini-batches and PART_PATHS paths,
never across shards. The parts are written first and the header last, so whoever finds the
header finds every part.
A shard supervisor and its workers read the header, then the parts of the mini-batches they
run, when they first need them: their own range, and of another shard's only what they
take from it. The merge and `prs plan` read them all.

While a local run's planner is still cutting, it publishes the plan's first mini-batches as
openings, `_prs/plan/opening-<first id>.json`, so shard 0 starts on them before the header
exists (an OpeningView); the planner keeps them in shard 0 and with the same ids.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from prs_runner.planning.plan import (
    MiniBatch,
    Plan,
    PlanHeader,
    cut_parts,
    header_from_json,
    header_of,
    header_to_json,
    mini_batch_from_json,
    mini_batch_to_json,
    part_from_json,
    part_rows,
    part_to_json,
    plan_of,
)
from prs_runner.storage.filesystem import Storage

PLAN_FILE = "_prs/plan.json"  # in the output
PARTS_FOLDER = "plan"  # beside plan.json
STEP_FILE_NAME = "step.json"  # the resolved spec, beside plan.json (a local run's)
PARTS_HELD = 8  # parts a PlanView keeps in memory
OPENING = "opening-"  # the name of an opening in PARTS_FOLDER, before its first id


def split_uri(plan_uri: str) -> tuple[Storage, str]:
    folder, name = plan_uri.rsplit("/", 1)
    return Storage(folder), name


def part_name(first: int) -> str:
    return f"{PARTS_FOLDER}/{first:08d}.json"


def write_plan(plan_uri: str, plan: Plan) -> PlanHeader:
    """Store PLAN at PLAN_URI (`<output>/_prs/plan.json`): its parts, then its header."""
    folder, name = split_uri(plan_uri)
    parts = cut_parts(plan)
    for part in parts:
        folder.write_atomic(part_name(part[0].id), part_to_json(part))
    header = header_of(plan, parts)
    folder.write_atomic(name, header_to_json(header))
    return header


def read_header(plan_uri: str) -> PlanHeader:
    folder, name = split_uri(plan_uri)
    return header_from_json(folder.read_bytes(name))


def read_plan(plan_uri: str) -> Plan:
    """The whole plan: the header and every part."""
    header = read_header(plan_uri)
    folder, _ = split_uri(plan_uri)
    batches = [mb for first in header.part_starts
               for mb in part_from_json(folder.read_bytes(part_name(first)))]
    return plan_of(header, tuple(batches))


class PlanView:
    """The plan as a shard or a worker sees it: the header, and mini-batches by id, read a
    part at a time when first asked for and kept for the PARTS_HELD parts used last. A
    part's rows become MiniBatch objects one by one, when asked for: a worker runs only
    some of a part's mini-batches."""

    def __init__(self, plan_uri: str, header: PlanHeader | None = None) -> None:
        self.folder, _ = split_uri(plan_uri)
        self.header = header or read_header(plan_uri)
        self.parts: OrderedDict[int, list[Any]] = OrderedDict()  # first id: its rows
        self.parts_read = 0

    def __getitem__(self, mb_id: int) -> MiniBatch:
        if not 0 <= mb_id < self.header.mini_batch_count:
            raise KeyError(mb_id)
        first = self.header.part_of(mb_id)
        rows = self.parts.get(first)
        if rows is None:
            rows = part_rows(self.folder.read_bytes(part_name(first)))
            self.parts_read += 1
            self.parts[first] = rows
            if len(self.parts) > PARTS_HELD:
                self.parts.popitem(last=False)
        else:
            self.parts.move_to_end(first)
        mb = mini_batch_from_json(rows[mb_id - first])
        if mb.id != mb_id:  # a part holds consecutive ids from its first
            raise ValueError(f"plan part {first}: row {mb_id - first} is mini-batch {mb.id}")
        return mb

    def get(self, mb_id: int) -> MiniBatch | None:
        try:
            return self[mb_id]
        except KeyError:
            return None


def write_opening(plan_uri: str, input_uri: str, mini_batches: Sequence[MiniBatch]) -> None:
    """Publish MINI_BATCHES (the next ones in id order) before the plan's header exists."""
    folder, _ = split_uri(plan_uri)
    rows = [mini_batch_to_json(mb) for mb in mini_batches]
    document = {"inputUri": input_uri, "miniBatches": rows}
    name = f"{PARTS_FOLDER}/{OPENING}{mini_batches[0].id:08d}.json"
    folder.write_atomic(name, json.dumps(document, separators=(",", ":")).encode())


class OpeningView:
    """The mini-batches of a plan that is still being cut, as far as they are published:
    what shard 0 and its workers run before the header exists. Once it does, `plan()` is
    the whole plan (the openings' mini-batches are the same in it)."""

    def __init__(self, plan_uri: str) -> None:
        self.plan_uri = plan_uri
        self.folder, _ = split_uri(plan_uri)
        self.batches: dict[int, MiniBatch] = {}
        self.seen: set[str] = set()
        self.input_uri = ""

    def plan(self) -> PlanView | None:
        try:
            return PlanView(self.plan_uri)
        except FileNotFoundError:
            return None

    def new_ids(self) -> list[int]:
        """The ids published since the last call, in order."""
        names = sorted(name for name in self.folder.list_names(PARTS_FOLDER)
                       if name.startswith(OPENING) and name not in self.seen)
        ids = []
        for name in names:
            document = json.loads(self.folder.read_bytes(f"{PARTS_FOLDER}/{name}"))
            self.input_uri = document["inputUri"]
            for row in document["miniBatches"]:
                mb = mini_batch_from_json(row)
                self.batches[mb.id] = mb
                ids.append(mb.id)
            self.seen.add(name)
        return ids

    def __getitem__(self, mb_id: int) -> MiniBatch:
        if mb_id not in self.batches:
            self.new_ids()
        return self.batches[mb_id]

    def get(self, mb_id: int) -> MiniBatch | None:
        try:
            return self[mb_id]
        except KeyError:
            return None
