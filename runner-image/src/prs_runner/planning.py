"""Mini-batches from an input listing, and their assignment to shards. Pure."""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prs_runner.storage import FileEntry

PLAN_VERSION = 1


@dataclass(frozen=True)
class MiniBatch:
    id: int
    shard: int
    bytes: int
    items: tuple[str, ...]  # paths relative to the input root


@dataclass(frozen=True)
class Plan:
    step_name: str
    fingerprint: str
    input_uri: str  # absolute local path or URI of the input root
    node_count: int
    mini_batches: tuple[MiniBatch, ...]
    step: dict[str, Any] = field(default_factory=dict)  # the resolved spec the workers run
    side_inputs: dict[str, str] = field(default_factory=dict)  # name -> local path or URI

    @property
    def total_items(self) -> int:
        return sum(len(mb.items) for mb in self.mini_batches)

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
        "miniBatches": [[mb.id, mb.shard, mb.bytes, list(mb.items)] for mb in plan.mini_batches],
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
        mini_batches=tuple(
            MiniBatch(id=i, shard=s, bytes=b, items=tuple(items))
            for i, s, b, items in document["miniBatches"]
        ),
    )


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
            f"{sum(len(b.items) for b in batches)} items, {sum(b.bytes for b in batches)} bytes"
        )
    for mb in plan.mini_batches:
        first = mb.items[0] if mb.items else ""
        more = f" (+{len(mb.items) - 1} more)" if len(mb.items) > 1 else ""
        lines.append(f"  {mb.id:>6}  shard {mb.shard}  {mb.bytes:>10} B  {first}{more}")
    return lines
