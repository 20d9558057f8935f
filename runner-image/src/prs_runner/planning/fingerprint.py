"""What makes two runs interchangeable for `allowReuse`: code bytes, image, parameters
that change results, and the input and side-input listings (names, sizes, mtimes). Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from prs_runner.storage.filesystem import FileEntry

# How and where a step runs, not what it computes.
RUNTIME_FIELDS = frozenset({
    "nodeCount", "processCountPerNode", "loggingLevel", "suspend", "ttlSecondsAfterFinished",
    "resources", "podTemplate", "allowReuse", "maxShardRetries", "output",
    "progressUpdateTimeout", "startupTimeout", "activeDeadlineSeconds",
})


def result_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    parameters = {k: v for k, v in spec.items() if k not in RUNTIME_FIELDS}
    parameters["input"] = {k: v for k, v in spec["input"].items() if k != "uri"}
    parameters["sideInputs"] = sorted(s["name"] for s in spec.get("sideInputs", []))
    parameters["code"] = {"entryScript": spec["code"]["entryScript"]}
    return parameters


DIGEST_BATCH = 10_000  # entries hashed per update: one call each would cost more than hashing


def listing_digest(listing: Sequence[FileEntry]) -> str:
    digest = hashlib.sha256()
    for start in range(0, len(listing), DIGEST_BATCH):
        digest.update("".join(f"{e.path}\0{e.size}\0{e.mtime_ns}\n"
                              for e in listing[start:start + DIGEST_BATCH]).encode())
    return digest.hexdigest()


def compute_fingerprint(
    spec: Mapping[str, Any],
    code_digests: Sequence[tuple[str, str]],
    input_listing: Sequence[FileEntry],
    side_input_listings: Mapping[str, Sequence[FileEntry]],
) -> str:
    """`code_digests`: (path, sha256 hex of its bytes) of every code file."""
    digest = hashlib.sha256()
    document = {
        "parameters": result_parameters(spec),
        "image": spec.get("image", ""),
        "code": [[path, sha] for path, sha in sorted(code_digests)],
        "input": listing_digest(input_listing),
        "sideInputs": {n: listing_digest(lst) for n, lst in sorted(side_input_listings.items())},
    }
    digest.update(json.dumps(document, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()
