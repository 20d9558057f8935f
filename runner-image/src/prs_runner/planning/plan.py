"""Mini-batches from an input listing, and their assignment to shards. Pure."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from prs_runner.planning.partition_paths import format_regex, path_key_values
from prs_runner.step.spec import SpecError
from prs_runner.storage.filesystem import FileEntry

PLAN_VERSION = 2  # 2: a header and parts (1: one document)


@dataclass(frozen=True)
class TableSlice:
    """The records of a tabular mini-batch: a byte range or row groups of its one file, or
    with partitionKeys the rows of its files that hold the key values."""

    rows: int  # records (the mini-batch's items)
    start: int = 0  # csv/jsonl: bytes [start, end) of the file
    end: int = 0
    header_end: int = 0  # csv: the header line is bytes [0, header_end)
    row_groups: tuple[int, ...] = ()  # parquet
    partition: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows}
        if self.end:
            out.update(start=self.start, end=self.end, headerEnd=self.header_end)
        if self.row_groups:
            out["rowGroups"] = list(self.row_groups)
        if self.partition is not None:
            out["partition"] = self.partition
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TableSlice:
        return TableSlice(
            rows=data["rows"], start=data.get("start", 0), end=data.get("end", 0),
            header_end=data.get("headerEnd", 0), row_groups=tuple(data.get("rowGroups", ())),
            partition=data.get("partition"),
        )


class MiniBatch(NamedTuple):  # a tuple: a plan holds one per mini-batch, up to millions,
    # and a frozen dataclass took 2 µs to make each (a third of cutting 20,000 files)
    id: int
    shard: int
    bytes: int
    items: tuple[str, ...]  # files: the paths; tabular: the file(s) read; relative to the root
    table: TableSlice | None = None  # tabular only

    @property
    def item_count(self) -> int:
        """Files, or records for tabular input."""
        return len(self.items) if self.table is None else self.table.rows


@dataclass(frozen=True)
class Plan:
    step_name: str
    fingerprint: str
    input_uri: str  # absolute local path or URI of the input root
    node_count: int
    mini_batches: tuple[MiniBatch, ...]
    step: dict[str, Any] = field(default_factory=dict)  # the resolved spec the workers run
    side_inputs: dict[str, str] = field(default_factory=dict)  # name -> local path or URI
    storage_requests: int = 0  # object-store calls made to list and plan the input

    @property
    def total_items(self) -> int:
        return sum(mb.item_count for mb in self.mini_batches)

    @property
    def total_bytes(self) -> int:
        return sum(mb.bytes for mb in self.mini_batches)

    def for_shard(self, shard: int) -> list[MiniBatch]:
        return [mb for mb in self.mini_batches if mb.shard == shard]


def assign_shards(batch_bytes: Sequence[int], node_count: int, opened: int = 0) -> list[int]:
    """Each shard gets one contiguous range of mini-batches, of about equal bytes (by count
    when every mini-batch is empty), and at least one while there are enough: a shard's part
    of the plan is then one range of ids, and a shard that runs out of work takes more from
    another at run time (execution.loot), so the cut need not be perfect. The first OPENED
    (published while the plan was cut, and run by shard 0 already) are shard 0's."""
    count = len(batch_bytes)
    shards = min(node_count, count)
    weights = list(batch_bytes) if sum(batch_bytes) else [1] * count
    total = sum(weights)
    starts, before = [0], 0
    for index, weight in enumerate(weights):
        # A mini-batch opens the next shard once its middle reaches that shard's share.
        while len(starts) < shards and (2 * before + weight) * shards >= 2 * len(starts) * total:
            starts.append(index)
        before += weight
    starts += [count] * (shards - len(starts))  # shares a last large mini-batch outweighed
    for shard in range(1, shards):  # non-empty, and room left for those after
        starts[shard] = min(max(starts[shard], starts[shard - 1] + 1), count - (shards - shard))
    assigned, shard = [], 0
    for index in range(count):
        while shard + 1 < shards and index >= starts[shard + 1]:
            shard += 1
        assigned.append(0 if index < opened else shard)
    return assigned


def plan_files(
    listing: Sequence[FileEntry], files_per_batch: int, node_count: int
) -> list[MiniBatch]:
    """Consecutive FILES_PER_BATCH files each (fewer in the last). Built from columns, with
    positional arguments: at a million files, objects per file would cost seconds."""
    paths, file_sizes = [e.path for e in listing], [e.size for e in listing]
    starts = range(0, len(paths), files_per_batch)
    items = [tuple(paths[i : i + files_per_batch]) for i in starts]
    sizes = [sum(file_sizes[i : i + files_per_batch]) for i in starts]
    shards = assign_shards(sizes, node_count)
    return [MiniBatch(i, shards[i], sizes[i], items[i]) for i in range(len(items))]


def plan_file_partitions(
    listing: Sequence[FileEntry], keys: Sequence[str], partition_format: str | None,
    node_count: int,
) -> list[MiniBatch]:
    """A files input with partitionKeys: one mini-batch per distinct combination of the
    values the files' folders give (partition_paths), ordered by them; its files in listing
    order. `context.partition_key_value` gets the values (TableSlice.partition)."""
    regex = format_regex(partition_format) if partition_format else None
    groups: dict[tuple[Any, ...], list[FileEntry]] = {}
    for entry in listing:
        try:
            values = path_key_values(entry.path, keys, regex)
        except ValueError:
            raise SpecError([f"spec.input.partitionFormat: {entry.path} does not have the "
                             f"shape {partition_format}"]) from None
        if len(values) < len(keys):
            missing = ", ".join(k for k in keys if k not in values)
            raise SpecError([
                f"spec.input.partitionKeys: {entry.path} gives no value for {missing}: a files "
                "input takes its key values from folders (Store=1000/, partitionFormat "
                "{Store}/*, or one folder level per key, in key order)"])
        groups.setdefault(tuple(sort_key(values[k]) for k in keys), []).append(entry)
    ordered = sorted(groups.items())
    sizes = [sum(e.size for e in files) for _, files in ordered]
    shards = assign_shards(sizes, node_count)
    return [MiniBatch(i, shards[i], sizes[i], tuple(e.path for e in files),
                      TableSlice(rows=len(files), partition=dict(zip(keys, (v for _, v in key),
                                                                     strict=True))))
            for i, (key, files) in enumerate(ordered)]


def sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order: folder values are ints or text."""
    return (0, value) if isinstance(value, int) else (1, value)


@dataclass(frozen=True)
class PlanHeader:
    """What every process of a run reads of the plan: all but the mini-batches, which are
    stored in parts (`part_starts`: each part's first id) and read by id when needed."""

    step_name: str
    fingerprint: str
    input_uri: str
    node_count: int
    step: dict[str, Any]
    side_inputs: dict[str, str]
    storage_requests: int
    mini_batch_count: int
    total_items: int
    total_bytes: int
    shard_starts: tuple[int, ...]  # each shard's first id (a shard with none: the next's)
    part_starts: tuple[int, ...]

    def shard_of(self, mb_id: int) -> int:
        return bisect.bisect_right(self.shard_starts, mb_id) - 1

    def shard_ids(self, shard: int) -> range:
        end = (self.shard_starts[shard + 1] if shard + 1 < len(self.shard_starts)
               else self.mini_batch_count)
        return range(self.shard_starts[shard], end)

    def part_of(self, mb_id: int) -> int:
        """The first id of the part that holds MB_ID."""
        return self.part_starts[bisect.bisect_right(self.part_starts, mb_id) - 1]


OPENING_FIRST = 8  # mini-batches in a plan's first opening; each next one doubles the total


def opening_limit(input_bytes: int, node_count: int) -> int | None:
    """How far into the input (bytes of mini-batches) openings may go: anywhere with one
    shard; with more, half of shard 0's share of the listing, so that what is opened would
    be shard 0's anyway (the planner still puts every opened mini-batch in shard 0)."""
    return None if node_count == 1 else input_bytes // (2 * node_count)


def opening_due(published: int, eligible: int) -> bool:
    """Whether to publish the mini-batches [published, eligible) as the next opening: the
    first OPENING_FIRST at once, then whenever the new ones are as many as those before, so
    a plan of n mini-batches has about log2(n) openings."""
    return eligible - published >= max(OPENING_FIRST, published)


PART_MINI_BATCHES = 2048  # per stored part of a plan, at most (a part holds one shard's)
PART_PATHS = 16_384  # paths in a part, at most (one mini-batch aside): about 1 MB of JSON


def cut_parts(plan: Plan) -> list[tuple[MiniBatch, ...]]:
    """The plan's mini-batches in parts of at most PART_MINI_BATCHES and, but for a single
    mini-batch of more, PART_PATHS paths (what a part weighs with many files per mini-batch),
    none across shards."""
    parts: list[list[MiniBatch]] = []
    paths = 0
    for mb in plan.mini_batches:
        if (not parts or len(parts[-1]) >= PART_MINI_BATCHES or parts[-1][-1].shard != mb.shard
                or paths + len(mb.items) > PART_PATHS):
            parts.append([])
            paths = 0
        parts[-1].append(mb)
        paths += len(mb.items)
    return [tuple(part) for part in parts]


def header_of(plan: Plan, parts: Sequence[Sequence[MiniBatch]]) -> PlanHeader:
    starts = [0] * plan.node_count
    shard = -1
    for mb in plan.mini_batches:
        while shard < mb.shard:
            shard += 1
            starts[shard] = mb.id
    for later in range(shard + 1, plan.node_count):  # shards with none start at the end
        starts[later] = len(plan.mini_batches)
    return PlanHeader(
        plan.step_name, plan.fingerprint, plan.input_uri, plan.node_count, plan.step,
        plan.side_inputs, plan.storage_requests, len(plan.mini_batches), plan.total_items,
        plan.total_bytes, tuple(starts), tuple(part[0].id for part in parts))


def header_to_json(header: PlanHeader) -> bytes:
    document = {
        "version": PLAN_VERSION,
        "stepName": header.step_name,
        "fingerprint": header.fingerprint,
        "inputUri": header.input_uri,
        "nodeCount": header.node_count,
        "step": header.step,
        "sideInputs": header.side_inputs,
        "storageRequests": header.storage_requests,
        "miniBatches": header.mini_batch_count,
        "items": header.total_items,
        "bytes": header.total_bytes,
        "shardStarts": list(header.shard_starts),
        "partStarts": list(header.part_starts),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def header_from_json(data: bytes) -> PlanHeader:
    document = json.loads(data)
    if document.get("version") != PLAN_VERSION:
        raise ValueError(f"plan version {document.get('version')} is not {PLAN_VERSION}")
    return PlanHeader(
        step_name=document["stepName"], fingerprint=document["fingerprint"],
        input_uri=document["inputUri"], node_count=document["nodeCount"],
        step=document["step"], side_inputs=document["sideInputs"],
        storage_requests=int(document.get("storageRequests", 0)),
        mini_batch_count=document["miniBatches"], total_items=document["items"],
        total_bytes=document["bytes"], shard_starts=tuple(document["shardStarts"]),
        part_starts=tuple(document["partStarts"]),
    )


def part_to_json(part: Sequence[MiniBatch]) -> bytes:
    rows = [mini_batch_to_json(mb) for mb in part]
    return json.dumps({"miniBatches": rows}, separators=(",", ":")).encode()


def part_from_json(data: bytes) -> list[MiniBatch]:
    return [mini_batch_from_json(row) for row in part_rows(data)]


def part_rows(data: bytes) -> list[Any]:
    """A stored part's mini-batches as rows (mini_batch_from_json makes each one)."""
    return json.loads(data)["miniBatches"]  # type: ignore[no-any-return]


def plan_of(header: PlanHeader, mini_batches: tuple[MiniBatch, ...]) -> Plan:
    return Plan(header.step_name, header.fingerprint, header.input_uri, header.node_count,
                mini_batches, header.step, header.side_inputs, header.storage_requests)


def mini_batch_to_json(mb: MiniBatch) -> list[Any]:
    row: list[Any] = [mb.id, mb.shard, mb.bytes, list(mb.items)]
    return row if mb.table is None else [*row, mb.table.to_dict()]


def mini_batch_from_json(row: list[Any]) -> MiniBatch:
    table = TableSlice.from_dict(row[4]) if len(row) > 4 else None
    return MiniBatch(id=row[0], shard=row[1], bytes=row[2], items=tuple(row[3]), table=table)


def shard_totals(plan: Plan) -> list[dict[str, int]]:
    """Per shard: its mini-batches, items and bytes, in shard order."""
    totals = [{"shard": shard, "miniBatches": 0, "items": 0, "bytes": 0}
              for shard in range(plan.node_count)]
    for mb in plan.mini_batches:
        total = totals[mb.shard]
        total["miniBatches"] += 1
        total["items"] += mb.item_count
        total["bytes"] += mb.bytes
    return totals


def describe_plan(plan: Plan) -> list[str]:
    """The lines `prs plan` prints: totals, then one line per shard, then per mini-batch."""
    lines = [
        f"{len(plan.mini_batches)} mini-batches, {plan.total_items} items, "
        f"{plan.total_bytes} bytes, {plan.node_count} shard(s)"
    ]
    lines += [f"shard {t['shard']}: {t['miniBatches']} mini-batches, {t['items']} items, "
              f"{t['bytes']} bytes" for t in shard_totals(plan)]
    for mb in plan.mini_batches:
        first = mb.items[0] if mb.items else ""
        first = first if first.isprintable() else repr(first)  # no terminal escape runs
        more = f" (+{len(mb.items) - 1} more)" if len(mb.items) > 1 else ""
        lines.append(f"  {mb.id:>6}  shard {mb.shard}  {mb.bytes:>10} B  {first}{more}"
                     + describe_slice(mb.table))
    return lines


def plan_summary(plan: Plan) -> dict[str, Any]:
    """What `prs plan --output json` prints: describe_plan's content, for scripts."""
    return {
        "stepName": plan.step_name,
        "fingerprint": plan.fingerprint,
        "input": plan.input_uri,
        "miniBatchCount": len(plan.mini_batches),
        "items": plan.total_items,
        "bytes": plan.total_bytes,
        "shards": shard_totals(plan),
        "miniBatches": [
            {"id": mb.id, "shard": mb.shard, "bytes": mb.bytes, "items": mb.item_count,
             "files": len(mb.items), "firstFile": mb.items[0] if mb.items else None,
             "table": mb.table.to_dict() if mb.table is not None else None}
            for mb in plan.mini_batches],
    }


def describe_slice(table: TableSlice | None) -> str:
    if table is None:
        return ""
    where = ""
    if table.end:
        where = f" bytes {table.start}-{table.end}"
    elif table.row_groups:
        where = f" row groups {table.row_groups[0]}-{table.row_groups[-1]}"
    if table.partition is not None:
        where = " " + ", ".join(f"{k}={v}" for k, v in table.partition.items())
    return f"{where}  {table.rows} rows"
