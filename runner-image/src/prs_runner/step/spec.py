"""The ParallelRunStep resource: loading, defaults, overrides and validation.

Pure and light (PyYAML only): the operator imports it too, and `prs validate` must
apply the same rules as the API server (crds/parallelrunsteps.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prs_runner.step.azure_arguments import apply_azure_arguments

API_VERSION = "parallelrun.io/v1alpha1"
KIND = "ParallelRunStep"

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Byte units in any case: Azure's docs and examples write "10kb" and "1mb" as often as "1MB".
MINI_BATCH_SIZE_PATTERN = re.compile(r"^[1-9][0-9]*((?i:[KMG]B)|rows)?$")
# Azure's partition_format: literal text and {Name} placeholders, braces balanced.
PARTITION_FORMAT_PATTERN = re.compile(r"^[^{}]*(\{[A-Za-z_][A-Za-z0-9_]*\}[^{}]*)*$")
FORBIDDEN_FILE_NAME_CHARS = set('~"#%&*:<>?/\\{|}`\x00')
# Names that are not plain file names in the output folder: the folder itself, its parent,
# and the runner's own folder (a merge there would replace it).
RESERVED_FILE_NAMES = (".", "..", "_prs")
RESERVED_ENV_PREFIX = "PRS_"  # the runner's own variables (where commits go, which shard)
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
SIDE_INPUT_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

CODE_SOURCES = ("sourceDirectory", "configMap", "path")
# Fields where null is kept: "never" (ttlSecondsAfterFinished), "computed" (the others).
NULLABLE_FIELDS = {"ttlSecondsAfterFinished", "progressUpdateTimeout", "activeDeadlineSeconds",
                   "processCountPerNode"}

DEFAULTS: dict[str, Any] = {
    "image": "",
    "sideInputs": [],
    "errorThreshold": -1,
    "miniBatchErrorThreshold": -1,
    "allowedFailedPercent": 100,
    "outputAction": "append_row",
    "appendRowFileName": "parallel_run_step.txt",
    "appendRowFormat": "text",
    "nodeCount": 1,
    "processCountPerNode": None,  # one per CPU the shard may use, as Azure does
    "loggingLevel": "INFO",
    "runInvocationTimeout": 60,
    "runMaxTry": 3,
    "progressUpdateTimeout": None,  # runInvocationTimeout x runMaxTry + INIT_ALLOWANCE
    "startupTimeout": 300,  # seconds a pod may take to start (pull, schedule, mount)
    "activeDeadlineSeconds": None,  # seconds the whole step may run; null: no limit
    "maxShardRetries": 3,
    "allowReuse": True,
    "arguments": [],
    "env": [],
    "resources": {},
    "podTemplate": {},
    "suspend": False,
    "ttlSecondsAfterFinished": None,
}

# Field path (relative to spec) -> expected scalar kind, for validation and --set coercion.
SCALAR_FIELDS: dict[str, str] = {
    "code.entryScript": "str",
    "code.sourceDirectory": "str",
    "code.configMap": "str",
    "code.path": "str",
    "image": "str",
    "input.type": "str",
    "input.uri": "str",
    "input.glob": "str",
    "input.format": "str",
    "input.partitionFormat": "str",
    "output.uri": "str",
    "miniBatchSize": "size",
    "errorThreshold": "int",
    "miniBatchErrorThreshold": "int",
    "allowedFailedPercent": "number",
    "outputAction": "str",
    "appendRowFileName": "str",
    "appendRowFormat": "str",
    "nodeCount": "int",
    "processCountPerNode": "int",
    "loggingLevel": "str",
    "runInvocationTimeout": "int",
    "runMaxTry": "int",
    "progressUpdateTimeout": "int",
    "startupTimeout": "int",
    "activeDeadlineSeconds": "int",
    "maxShardRetries": "int",
    "allowReuse": "bool",
    "suspend": "bool",
    "ttlSecondsAfterFinished": "int",
}
# The default progressUpdateTimeout allows every try of the slowest mini-batch plus this much
# for init() (loading a model): it never fires while any process still makes progress.
INIT_ALLOWANCE_SECONDS = 600


def progress_timeout(spec: Mapping[str, Any]) -> int:
    """Seconds without a completed mini-batch after which a shard fails with NoProgress."""
    explicit = spec.get("progressUpdateTimeout")
    if explicit is not None:
        return int(explicit)
    return int(spec["runInvocationTimeout"]) * int(spec["runMaxTry"]) + INIT_ALLOWANCE_SECONDS


LIST_FIELDS = {"input.partitionKeys", "sideInputs", "arguments", "env"}
OBJECT_FIELDS = {"resources", "podTemplate"}
# What podTemplate may hold: each reaches the pods (see the operator's builders); anything
# else is refused rather than dropped in silence. Placement keys apply to the shard pods,
# credentials and volumes to every pod of the step.
POD_TEMPLATE_KEYS = ("labels", "annotations", "nodeSelector", "tolerations", "affinity",
                     "priorityClassName", "volumes", "volumeMounts", "imagePullSecrets",
                     "serviceAccountName", "env", "envFrom")
SECTIONS = {
    "code": {"entryScript", *CODE_SOURCES},
    "input": {"type", "uri", "glob", "format", "partitionKeys", "partitionFormat"},
    "output": {"uri"},
}
ENUMS: dict[str, tuple[str, ...]] = {
    "input.type": ("files", "tabular"),
    "input.format": ("csv", "parquet", "jsonl"),
    "outputAction": ("append_row", "summary_only"),
    "appendRowFormat": ("text", "csv", "parquet"),
    "loggingLevel": ("WARNING", "INFO", "DEBUG"),
}
# Upper bounds the API server enforces too: an Indexed Job of more pods than this is a typo,
# and more worker processes than this on one pod would only thrash.
MAXIMUMS: dict[str, int] = {
    "nodeCount": 1000,
    "processCountPerNode": 256,
}
MINIMUMS: dict[str, int] = {
    "errorThreshold": -1,
    "miniBatchErrorThreshold": -1,
    "nodeCount": 1,
    "processCountPerNode": 1,
    "runInvocationTimeout": 1,
    "runMaxTry": 1,
    "progressUpdateTimeout": 1,
    "startupTimeout": 1,
    "activeDeadlineSeconds": 1,
    "maxShardRetries": 0,
    "ttlSecondsAfterFinished": 0,
}


class SpecError(ValueError):
    """A step that breaks the contract; `problems` holds one line per field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid ParallelRunStep:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class SideInput:
    name: str
    uri: str

    @property
    def env_name(self) -> str:
        return "PRS_SIDE_INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()


@dataclass(frozen=True)
class MiniBatchSize:
    """`count` files, or about `bytes` bytes, or `rows` rows per mini-batch."""

    count: int | None = None
    bytes: int | None = None
    rows: int | None = None


@dataclass(frozen=True)
class Step:
    """A validated step: `spec` is the defaulted spec dict, the typed views are derived."""

    name: str
    namespace: str
    spec: dict[str, Any]
    base_dir: Path = field(default=Path("."))
    metadata: dict[str, Any] = field(default_factory=dict)  # as written: labels, namespace...

    def get(self, path: str) -> Any:
        return lookup(self.spec, path)

    @property
    def side_inputs(self) -> list[SideInput]:
        return [SideInput(s["name"], s["uri"]) for s in self.spec["sideInputs"]]

    @property
    def mini_batch_size(self) -> MiniBatchSize:
        return parse_mini_batch_size(str(self.spec["miniBatchSize"]), self.spec["input"]["type"])

    def resolve_local(self, uri: str) -> str:
        """A local path relative to the YAML file becomes absolute, its links and '..'
        resolved (a file:// URI too: the checks that keep a run from reading its own output
        compare these); other URIs stay as they are."""
        local = uri.removeprefix("file://")
        if "://" in local:
            return uri
        return str((self.base_dir / local).resolve())


def lookup(spec: Mapping[str, Any], path: str) -> Any:
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def parse_mini_batch_size(text: str, input_type: str) -> MiniBatchSize:
    match = MINI_BATCH_SIZE_PATTERN.fullmatch(text)  # RE2 `$`: no trailing "\n"
    if not match:
        raise ValueError(text)
    unit = match.group(1)
    number = int(text[: len(text) - len(unit or "")])
    if unit is None:
        return MiniBatchSize(count=number) if input_type == "files" else MiniBatchSize(bytes=number)
    if unit == "rows":
        return MiniBatchSize(rows=number)
    return MiniBatchSize(bytes=number * 1024 ** {"KB": 1, "MB": 2, "GB": 3}[unit.upper()])


def drop_nulls(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Null means absent, as on the API server (it prunes the null values of non-nullable
    fields before defaulting): `nodeCount: null` gets the default, `glob: null` is no glob."""
    out = {k: v for k, v in spec.items() if v is not None or k in NULLABLE_FIELDS}
    for key, value in out.items():
        if key in SECTIONS and isinstance(value, Mapping):
            out[key] = {k: v for k, v in value.items() if v is not None}
        elif key in ("env", "sideInputs") and isinstance(value, list):
            out[key] = [
                {k: v for k, v in item.items() if v is not None}
                if isinstance(item, Mapping)
                else item
                for item in value
            ]
    return out


def apply_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    spec = drop_nulls(spec)
    out = {k: v for k, v in DEFAULTS.items()}
    out.update(spec)
    if "miniBatchSize" not in spec:
        is_tabular = lookup(spec, "input.type") == "tabular"
        out["miniBatchSize"] = "1MB" if is_tabular else "10"
    if isinstance(out["miniBatchSize"], int) and not isinstance(out["miniBatchSize"], bool):
        out["miniBatchSize"] = str(out["miniBatchSize"])
    return apply_azure_arguments(out, DEFAULTS)  # `--run_max_try 5` means runMaxTry: 5


