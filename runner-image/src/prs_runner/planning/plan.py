"""Mini-batches from an input listing, and their assignment to shards. Pure."""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prs_runner.storage.filesystem import FileEntry, Storage

PLAN_VERSION = 1


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


@dataclass(frozen=True)
class MiniBatch:
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


def chunk_files(listing: Sequence[FileEntry], files_per_batch: int) -> list[list[FileEntry]]:
    return [list(listing[i : i + files_per_batch]) for i in range(0, len(listing), files_per_batch)]


def assign_shards(batch_bytes: Sequence[int], node_count: int) -> list[int]:
    """Each mini-batch, in id order, goes to the shard with the fewest bytes so far
    (then the fewest mini-batches, then the lowest index), which keeps shards within
    one mini-batch of each other and is deterministic."""
    heap = [(0, 0, shard) for shard in range(node_count)]
    shards = []
    for size in batch_bytes:
        load, count, shard = heapq.heappop(heap)
        shards.append(shard)
        heapq.heappush(heap, (load + size, count + 1, shard))
    return shards


def plan_files(
    listing: Sequence[FileEntry], files_per_batch: int, node_count: int
) -> list[MiniBatch]:
    chunks = chunk_files(listing, files_per_batch)
    sizes = [sum(e.size for e in chunk) for chunk in chunks]
    shards = assign_shards(sizes, node_count)
    return [
        MiniBatch(id=i, shard=shards[i], bytes=sizes[i], items=tuple(e.path for e in chunk))
        for i, chunk in enumerate(chunks)
    ]


def plan_to_json(plan: Plan) -> bytes:
    document = {
        "version": PLAN_VERSION,
        "stepName": plan.step_name,
        "fingerprint": plan.fingerprint,
        "inputUri": plan.input_uri,
        "nodeCount": plan.node_count,
        "step": plan.step,
        "sideInputs": plan.side_inputs,
        "storageRequests": plan.storage_requests,
        "miniBatches": [mini_batch_to_json(mb) for mb in plan.mini_batches],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def plan_from_json(data: bytes) -> Plan:
    document = json.loads(data)
    if document.get("version") != PLAN_VERSION:
        raise ValueError(f"plan version {document.get('version')} is not {PLAN_VERSION}")
    return Plan(
        step_name=document["stepName"],
        fingerprint=document["fingerprint"],
        input_uri=document["inputUri"],
        node_count=document["nodeCount"],
        step=document["step"],
        side_inputs=document["sideInputs"],
        storage_requests=int(document.get("storageRequests", 0)),
        mini_batches=tuple(mini_batch_from_json(row) for row in document["miniBatches"]),
    )


def mini_batch_to_json(mb: MiniBatch) -> list[Any]:
    row: list[Any] = [mb.id, mb.shard, mb.bytes, list(mb.items)]
    return row if mb.table is None else [*row, mb.table.to_dict()]


def mini_batch_from_json(row: list[Any]) -> MiniBatch:
    table = TableSlice.from_dict(row[4]) if len(row) > 4 else None
    return MiniBatch(id=row[0], shard=row[1], bytes=row[2], items=tuple(row[3]), table=table)


def describe_plan(plan: Plan) -> list[str]:
    """The lines `prs plan` prints: totals, then one line per shard, then per mini-batch."""
    lines = [
        f"{len(plan.mini_batches)} mini-batches, {plan.total_items} items, "
        f"{plan.total_bytes} bytes, {plan.node_count} shard(s)"
    ]
    for shard in range(plan.node_count):
        batches = plan.for_shard(shard)
        lines.append(
            f"shard {shard}: {len(batches)} mini-batches, "
            f"{sum(b.item_count for b in batches)} items, {sum(b.bytes for b in batches)} bytes"
        )
    for mb in plan.mini_batches:
        first = mb.items[0] if mb.items else ""
        more = f" (+{len(mb.items) - 1} more)" if len(mb.items) > 1 else ""
        lines.append(f"  {mb.id:>6}  shard {mb.shard}  {mb.bytes:>10} B  {first}{more}"
                     + describe_slice(mb.table))
    return lines


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


def read_plan(plan_uri: str) -> Plan:
    """The plan stored at PLAN_URI (`<output>/_prs/plan.json`)."""
    folder, name = plan_uri.rsplit("/", 1)
    return plan_from_json(Storage(folder).read_bytes(name))
