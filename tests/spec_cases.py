"""One table of ParallelRunStep cases for both halves of validation.

The same cases run against the offline validator (``prs_runner.step.validation``, in
``tests/unit/test_validation.py``) and against a real API server serving
``crds/parallelrunsteps.yaml`` (``tests/cluster/test_crd.py``): a bad case must be rejected
by both, with a message that names ``field`` (a substring of the field path, which starts
every offline message and is part of every API server cause); a good variant must be
accepted by both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]
Patch = Callable[[Document], None]


def good_document() -> Document:
    """A known-good step (a fresh dict every call): files input, code from a local folder."""
    return {
        "apiVersion": "parallelrun.io/v1alpha1",
        "kind": "ParallelRunStep",
        "metadata": {"name": "predict-digits"},
        "spec": {
            "code": {"entryScript": "score.py", "sourceDirectory": "./src"},
            "input": {"type": "files", "uri": "./data/digits", "glob": "**/*.png"},
            "output": {"uri": "./out/predict-digits"},
        },
    }


def full_document() -> Document:
    """The example of docs/contract.md §2: every spec field set, defaults spelled out."""
    document = good_document()
    document["spec"].update(
        {
            "image": "",
            "sideInputs": [{"name": "model", "uri": "./models/digits.joblib"}],
            "miniBatchSize": "10",
            "errorThreshold": -1,
            "miniBatchErrorThreshold": -1,
            "allowedFailedPercent": 100,
            "outputAction": "append_row",
            "appendRowFileName": "parallel_run_step.txt",
            "appendRowFormat": "text",
            "nodeCount": 2,
            "processCountPerNode": 2,
            "loggingLevel": "INFO",
            "runInvocationTimeout": 60,
            "runMaxTry": 3,
            "maxShardRetries": 3,
            "allowReuse": True,
            "arguments": ["--threshold", "0.5"],
            "env": [{"name": "LOG_FORMAT", "value": "json"}],
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
            "podTemplate": {},
            "suspend": False,
            "ttlSecondsAfterFinished": None,
        }
    )
    return document


def _walk(doc: Document, path: str) -> tuple[dict[str, Any], str]:
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    return node, last


def setting(path: str, value: Any) -> Patch:
    """Set ``path`` (dotted, from the document root) to ``value``."""

    def patch(doc: Document) -> None:
        node, last = _walk(doc, path)
        node[last] = copy.deepcopy(value)

    return patch


def deleting(path: str) -> Patch:
    """Remove ``path`` (dotted, from the document root)."""

    def patch(doc: Document) -> None:
        node, last = _walk(doc, path)
        node.pop(last, None)

    return patch


def tabular(**fields: Any) -> Patch:
    """Switch the input to tabular (csv files), then set ``spec`` fields."""

    def patch(doc: Document) -> None:
        doc["spec"]["input"] = {"type": "tabular", "uri": "s3://bucket/sales", "format": "csv"}
        doc["spec"].update(copy.deepcopy(fields))

    return patch


def combine(*patches: Patch) -> Patch:
    def patch(doc: Document) -> None:
        for each in patches:
            each(doc)

    return patch


@dataclass(frozen=True)
class Case:
    id: str
    patch: Patch
    field: str = ""  # bad cases: the field path substring both validators must name

    def document(self) -> Document:
        doc = good_document()
        self.patch(doc)
        return doc


def bad(case_id: str, field: str, *patches: Patch) -> Case:
    return Case(case_id, combine(*patches), field)


def good(case_id: str, *patches: Patch) -> Case:
    return Case(case_id, combine(*patches))


BAD_CASES: list[Case] = [
    # enums
    bad("input-type-enum", "spec.input.type", setting("spec.input.type", "images")),
    bad("input-format-enum", "spec.input.format", tabular(), setting("spec.input.format", "xlsx")),
    bad("output-action-enum", "spec.outputAction", setting("spec.outputAction", "append")),
    bad("append-row-format-enum", "spec.appendRowFormat", setting("spec.appendRowFormat", "json")),
    bad("logging-level-enum", "spec.loggingLevel", setting("spec.loggingLevel", "info")),
    # minimums and ranges
    bad("node-count-0", "spec.nodeCount", setting("spec.nodeCount", 0)),
    bad("node-count-negative", "spec.nodeCount", setting("spec.nodeCount", -3)),
    bad("process-count-0", "spec.processCountPerNode", setting("spec.processCountPerNode", 0)),
    bad("error-threshold-minus-2", "spec.errorThreshold", setting("spec.errorThreshold", -2)),
    bad(
        "mini-batch-error-threshold-minus-2",
        "spec.miniBatchErrorThreshold",
        setting("spec.miniBatchErrorThreshold", -2),
    ),
    bad("run-max-try-0", "spec.runMaxTry", setting("spec.runMaxTry", 0)),
    bad(
        "run-invocation-timeout-0",
        "spec.runInvocationTimeout",
        setting("spec.runInvocationTimeout", 0),
    ),
    bad("max-shard-retries-minus-1", "spec.maxShardRetries", setting("spec.maxShardRetries", -1)),
    bad(
        "ttl-minus-1",
        "spec.ttlSecondsAfterFinished",
        setting("spec.ttlSecondsAfterFinished", -1),
    ),
    bad(
        "allowed-failed-percent-101",
        "spec.allowedFailedPercent",
        setting("spec.allowedFailedPercent", 101),
    ),
    bad(
        "allowed-failed-percent-100.5",
        "spec.allowedFailedPercent",
        setting("spec.allowedFailedPercent", 100.5),
    ),
    bad(
        "allowed-failed-percent-negative",
        "spec.allowedFailedPercent",
        setting("spec.allowedFailedPercent", -1),
    ),
    # miniBatchSize
    bad("mini-batch-size-1TB", "spec.miniBatchSize", tabular(miniBatchSize="1TB")),
    bad("mini-batch-size-0", "spec.miniBatchSize", tabular(miniBatchSize="0")),
    bad("mini-batch-size-abc", "spec.miniBatchSize", tabular(miniBatchSize="abc")),
    bad("mini-batch-size-minus-5", "spec.miniBatchSize", tabular(miniBatchSize="-5")),
    bad("mini-batch-size-upper-case-rows", "spec.miniBatchSize", tabular(miniBatchSize="5ROWS")),
    bad("mini-batch-size-bytes-unit-alone", "spec.miniBatchSize", tabular(miniBatchSize="B")),
    bad("mini-batch-size-space", "spec.miniBatchSize", tabular(miniBatchSize="1 MB")),
    bad("mini-batch-size-leading-zero", "spec.miniBatchSize", tabular(miniBatchSize="010")),
    bad("mini-batch-size-newline", "spec.miniBatchSize", tabular(miniBatchSize="10\n")),
    bad("mini-batch-size-int-0", "spec.miniBatchSize", tabular(miniBatchSize=0)),
    bad("mini-batch-size-int-negative", "spec.miniBatchSize", setting("spec.miniBatchSize", -5)),
    bad("mini-batch-size-bool", "spec.miniBatchSize", setting("spec.miniBatchSize", True)),
    bad(
        "mini-batch-size-bytes-for-files",
        "spec.miniBatchSize",
        setting("spec.miniBatchSize", "1MB"),
    ),
    bad(
        "mini-batch-size-rows-for-files",
        "spec.miniBatchSize",
        setting("spec.miniBatchSize", "100rows"),
    ),
    # code
    bad("code-no-source", "spec.code", deleting("spec.code.sourceDirectory")),
    bad("code-empty-source", "spec.code", setting("spec.code.sourceDirectory", "")),
    bad("code-two-sources", "spec.code", setting("spec.code.configMap", "digits-src")),
    bad(
        "code-three-sources",
        "spec.code",
        setting("spec.code.configMap", "digits-src"),
        setting("spec.code.path", "/app"),
    ),
    bad("code-missing-entry-script", "spec.code.entryScript", deleting("spec.code.entryScript")),
    bad("code-empty-entry-script", "spec.code.entryScript", setting("spec.code.entryScript", "")),
    bad("code-missing", "spec.code", deleting("spec.code")),
    bad("code-not-an-object", "spec.code", setting("spec.code", "score.py")),
    # input and output
    bad("input-missing-type", "spec.input.type", deleting("spec.input.type")),
    bad("input-missing-uri", "spec.input.uri", deleting("spec.input.uri")),
    bad("input-empty-uri", "spec.input.uri", setting("spec.input.uri", "")),
    bad("input-missing", "spec.input", deleting("spec.input")),
    bad("output-missing-uri", "spec.output.uri", deleting("spec.output.uri")),
    bad("output-empty-uri", "spec.output.uri", setting("spec.output.uri", "")),
    bad("output-missing", "spec.output", deleting("spec.output")),
    bad("spec-missing", "spec", deleting("spec")),
    bad("format-with-files", "spec.input.format", setting("spec.input.format", "csv")),
    bad(
        "partition-format-without-keys",
        "spec.input.partitionFormat",
        setting("spec.input.partitionFormat", "{Store}/*.csv"),
    ),
    bad(
        "partition-format-unclosed-brace",
        "spec.input.partitionFormat",
        setting("spec.input.partitionKeys", ["Store"]),
        setting("spec.input.partitionFormat", "{Store/*.csv"),
    ),
    bad(
        "partition-format-bad-name",
        "spec.input.partitionFormat",
        setting("spec.input.partitionKeys", ["Store"]),
        setting("spec.input.partitionFormat", "{Store-1}/*.csv"),
    ),
    bad(
        "partition-format-not-a-string",
        "spec.input.partitionFormat",
        setting("spec.input.partitionKeys", ["Store"]),
        setting("spec.input.partitionFormat", ["{Store}"]),
    ),
    bad(
        "partition-keys-not-a-list",
        "spec.input.partitionKeys",
        tabular(),
        setting("spec.input.partitionKeys", "store"),
    ),
    bad(
        "partition-keys-empty-name",
        "spec.input.partitionKeys",
        tabular(),
        setting("spec.input.partitionKeys", [""]),
    ),
    bad(
        "partition-keys-duplicate",
        "spec.input.partitionKeys",
        tabular(),
        setting("spec.input.partitionKeys", ["Store", "Brand", "Store"]),
    ),
    bad(
        "partition-keys-too-many",
        "spec.input.partitionKeys",
        tabular(),
        setting("spec.input.partitionKeys", [f"k{i}" for i in range(33)]),
    ),
    bad(
        "partition-keys-not-strings",
        "spec.input.partitionKeys",
        tabular(),
        setting("spec.input.partitionKeys", [1]),
    ),
    # appendRowFileName
    bad("file-name-slash", "spec.appendRowFileName", setting("spec.appendRowFileName", "a/b.txt")),
    bad("file-name-star", "spec.appendRowFileName", setting("spec.appendRowFileName", "out*.txt")),
    bad(
        "file-name-backslash",
        "spec.appendRowFileName",
        setting("spec.appendRowFileName", "a\\b.txt"),
    ),
    bad("file-name-colon", "spec.appendRowFileName", setting("spec.appendRowFileName", "c:out")),
    bad("file-name-backtick", "spec.appendRowFileName", setting("spec.appendRowFileName", "a`b")),
    bad("file-name-empty", "spec.appendRowFileName", setting("spec.appendRowFileName", "")),
    # names that would make the merge replace the output folder, its parent or _prs/
    bad("file-name-dot", "spec.appendRowFileName", setting("spec.appendRowFileName", ".")),
    bad("file-name-dot-dot", "spec.appendRowFileName", setting("spec.appendRowFileName", "..")),
    bad("file-name-prs", "spec.appendRowFileName", setting("spec.appendRowFileName", "_prs")),
    bad("file-name-nul", "spec.appendRowFileName", setting("spec.appendRowFileName", "a\x00b")),
    # the entry script stays inside the code folder
    bad("entry-script-absolute", "spec.code.entryScript",
        setting("spec.code.entryScript", "/etc/score.py")),
    bad("entry-script-parent", "spec.code.entryScript",
        setting("spec.code.entryScript", "../score.py")),
    bad("entry-script-deep-parent", "spec.code.entryScript",
        setting("spec.code.entryScript", "pkg/../../score.py")),
    bad("entry-script-backslash-parent", "spec.code.entryScript",
        setting("spec.code.entryScript", "pkg\\..\\..\\score.py")),
    bad("entry-script-nul", "spec.code.entryScript",
        setting("spec.code.entryScript", "score.py\x00.txt")),
    # upper bounds
    bad("node-count-over-the-maximum", "spec.nodeCount", setting("spec.nodeCount", 1001)),
    bad("processes-over-the-maximum", "spec.processCountPerNode",
        setting("spec.processCountPerNode", 257)),
    # the runner's own variables
    bad("env-reserved-prefix", "spec.env", setting("spec.env", [{"name": "PRS_PVC_ROOT",
                                                                 "value": "/elsewhere"}])),
    # unknown fields (the API server rejects them with fieldValidation=Strict)
    bad("unknown-spec-field", "spec.nodeCnt", setting("spec.nodeCnt", 2)),
    bad("unknown-code-field", "spec.code.entry_script", setting("spec.code.entry_script", "a.py")),
    bad("unknown-input-field", "spec.input.pattern", setting("spec.input.pattern", "*.png")),
    bad("unknown-output-field", "spec.output.path", setting("spec.output.path", "/out")),
    # metadata.name
    bad("name-too-short", "metadata.name", setting("metadata.name", "ab")),
    bad("name-too-long", "metadata.name", setting("metadata.name", "a" * 49)),
    bad("name-upper-case", "metadata.name", setting("metadata.name", "Predict-Digits")),
    bad("name-leading-digit", "metadata.name", setting("metadata.name", "1predict")),
    bad("name-trailing-dash", "metadata.name", setting("metadata.name", "predict-")),
    bad("name-trailing-newline", "metadata.name", setting("metadata.name", "predict\n")),
    bad("name-dot", "metadata.name", setting("metadata.name", "predict.digits")),
    # lists
    bad("arguments-not-strings", "spec.arguments", setting("spec.arguments", ["--a", 1])),
    bad("arguments-not-a-list", "spec.arguments", setting("spec.arguments", "--a 1")),
    bad("env-without-name", "spec.env[0].name", setting("spec.env", [{"value": "json"}])),
    bad(
        "env-bad-name",
        "spec.env[0].name",
        setting("spec.env", [{"name": "1FORMAT", "value": "json"}]),
    ),
    bad(
        "env-name-newline",
        "spec.env[0].name",
        setting("spec.env", [{"name": "FORMAT\n", "value": "json"}]),
    ),
    bad(
        "env-value-not-string",
        "spec.env[0].value",
        setting("spec.env", [{"name": "WORKERS", "value": 4}]),
    ),
    bad(
        "env-duplicate-name",
        "spec.env[1]",
        setting("spec.env", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
    ),
    bad("env-not-a-list", "spec.env", setting("spec.env", {"A": "1"})),
    bad(
        "side-input-without-uri",
        "spec.sideInputs[0].uri",
        setting("spec.sideInputs", [{"name": "m"}]),
    ),
    bad(
        "side-input-without-name",
        "spec.sideInputs[0].name",
        setting("spec.sideInputs", [{"uri": "./m.joblib"}]),
    ),
    bad(
        "side-input-bad-name",
        "spec.sideInputs[0].name",
        setting("spec.sideInputs", [{"name": "my model", "uri": "./m.joblib"}]),
    ),
    bad(
        "side-input-duplicate-name",
        "spec.sideInputs[1]",
        setting("spec.sideInputs", [{"name": "m", "uri": "./a"}, {"name": "m", "uri": "./b"}]),
    ),
    # null is absent (the API server prunes nulls of non-nullable fields): required stays required
    bad("entry-script-null", "spec.code.entryScript", setting("spec.code.entryScript", None)),
    bad("source-null", "spec.code", setting("spec.code.sourceDirectory", None)),
    bad("input-uri-null", "spec.input.uri", setting("spec.input.uri", None)),
    bad("output-null", "spec.output", setting("spec.output", None)),
    bad(
        "side-input-uri-null",
        "spec.sideInputs[0].uri",
        setting("spec.sideInputs", [{"name": "m", "uri": None}]),
    ),
    # wrong types
    bad("node-count-string", "spec.nodeCount", setting("spec.nodeCount", "two")),
    bad("node-count-float", "spec.nodeCount", setting("spec.nodeCount", 1.5)),
    bad(
        "process-count-string", "spec.processCountPerNode", setting("spec.processCountPerNode", "2")
    ),
    bad("allow-reuse-string", "spec.allowReuse", setting("spec.allowReuse", "yes")),
    bad("suspend-string", "spec.suspend", setting("spec.suspend", "false")),
    bad(
        "allowed-failed-percent-string",
        "spec.allowedFailedPercent",
        setting("spec.allowedFailedPercent", "50"),
    ),
    bad("image-not-string", "spec.image", setting("spec.image", 5)),
    bad("input-uri-not-string", "spec.input.uri", setting("spec.input.uri", ["./a", "./b"])),
    bad("resources-not-an-object", "spec.resources", setting("spec.resources", ["cpu"])),
    bad("pod-template-not-an-object", "spec.podTemplate", setting("spec.podTemplate", "big")),
    # what podTemplate holds reaches the pods; anything else is refused, not dropped
    bad("pod-template-unknown-key", "spec.podTemplate.hostNetwork",
        setting("spec.podTemplate", {"hostNetwork": True})),
    bad("pod-template-reserved-env", "spec.podTemplate.env",
        setting("spec.podTemplate", {"env": [{"name": "PRS_STEP", "value": "x"}]})),
    bad(
        "ttl-string", "spec.ttlSecondsAfterFinished", setting("spec.ttlSecondsAfterFinished", "1h")
    ),
    # URIs: a scheme some storage takes, a bucket or container name, no aliasing segments
    bad("uri-scheme-typo", "spec.input.uri", setting("spec.input.uri", "s4://bucket/in")),
    bad("uri-scheme-unknown-side-input", "spec.sideInputs",
        setting("spec.sideInputs", [{"name": "m", "uri": "sftp://host/m.joblib"}])),
    bad("uri-bucket-name", "spec.output.uri", setting("spec.output.uri", "s3://My_Bucket/out")),
    bad("uri-bucket-short", "spec.input.uri", setting("spec.input.uri", "gs://ab/in")),
    bad("uri-abfs-without-account", "spec.input.uri",
        setting("spec.input.uri", "abfs://container/in")),
    bad("uri-abfs-other-host", "spec.output.uri",
        setting("spec.output.uri", "abfs://c01@account.example.com/out")),
    bad("uri-dot-dot", "spec.output.uri", setting("spec.output.uri", "s3://bucket/out/../x")),
    bad("uri-dot", "spec.output.uri", setting("spec.output.uri", "az://container/./out")),
    bad("uri-empty-segment", "spec.input.uri", setting("spec.input.uri", "gs://bucket//in")),
    bad("uri-pvc-dot-dot", "spec.output.uri", setting("spec.output.uri", "pvc://data/../x")),
    bad("uri-too-long", "spec.output.uri", setting("spec.output.uri", "s3://bucket/" + "x" * 2040)),
    bad("side-inputs-too-many", "spec.sideInputs", setting(
        "spec.sideInputs", [{"name": f"m{n}", "uri": f"./m{n}"} for n in range(65)])),
    bad("uri-pvc-without-claim", "spec.output.uri", setting("spec.output.uri", "pvc:///out")),
]



GOOD_CASES: list[Case] = [
    good("uri-s3", setting("spec.input.uri", "s3://bucket-1/in/"),
         setting("spec.output.uri", "s3://bucket-1/out/predict")),
    good("uri-gs", setting("spec.input.uri", "gs://my.bucket/in"),
         setting("spec.output.uri", "gs://my.bucket/out")),
    good("uri-abfs", setting("spec.input.uri",
                             "abfs://data@account01.dfs.core.windows.net/in/digits"),
         setting("spec.output.uri", "abfss://data@account01.dfs.core.windows.net/out")),
    good("uri-az", setting("spec.input.uri", "az://data/in"),
         setting("spec.sideInputs", [{"name": "m", "uri": "az://models/m.joblib"}])),
    good("uri-bucket-root", setting("spec.input.uri", "s3://bucket/")),
    good("uri-hidden-name", setting("spec.input.uri", "s3://bucket/.data/in")),
    good("base"),
    good("contract-example", lambda doc: doc.update(full_document())),
    good(
        "code-config-map",
        deleting("spec.code.sourceDirectory"),
        setting("spec.code.configMap", "digits-src"),
    ),
    good(
        "code-image-path", deleting("spec.code.sourceDirectory"), setting("spec.code.path", "/app")
    ),
    good(
        "code-empty-other-sources",
        setting("spec.code.configMap", ""),
        setting("spec.code.path", ""),
    ),
    good(
        "input-pvc",
        setting("spec.input.uri", "pvc://data/digits"),
        setting("spec.output.uri", "pvc://data/out/predict-digits"),
    ),
    good(
        "input-s3-no-glob",
        setting("spec.input.uri", "s3://bucket/digits"),
        deleting("spec.input.glob"),
    ),
    good("mini-batch-size-int", setting("spec.miniBatchSize", 10)),
    good("mini-batch-size-string", setting("spec.miniBatchSize", "250")),
    good("tabular-defaults", tabular()),
    good("tabular-no-format", tabular(), deleting("spec.input.format")),
    good("tabular-512KB", tabular(miniBatchSize="512KB")),
    good("partition-keys-with-files", setting("spec.input.partitionKeys", ["store"])),
    good("files-partition-format", setting("spec.input.partitionKeys", ["Store", "Brand"]),
         setting("spec.input.partitionFormat", "{Store}/{Brand}/*.csv")),
    good("tabular-partition-format", tabular(),
         setting("spec.input.partitionKeys", ["Store"]),
         setting("spec.input.partitionFormat", "/data/{Store}/**/part-*.parquet")),
    good("tabular-azure-lower-case-10kb", tabular(miniBatchSize="10kb")),
    good("tabular-azure-lower-case-1mb", tabular(miniBatchSize="1mb")),
    good("tabular-mixed-case-2Gb", tabular(miniBatchSize="2Gb")),
    good("tabular-1GB", tabular(miniBatchSize="1GB")),
    good("tabular-plain-bytes", tabular(miniBatchSize="1048576")),
    good("tabular-int-bytes", tabular(miniBatchSize=4096)),
    good("tabular-rows", tabular(miniBatchSize="5000rows")),
    good(
        "tabular-parquet-partitioned",
        tabular(),
        setting("spec.input.format", "parquet"),
        setting("spec.input.partitionKeys", ["store", "region"]),
    ),
    good(
        "tabular-jsonl", tabular(appendRowFormat="parquet"), setting("spec.input.format", "jsonl")
    ),
    good("summary-only", setting("spec.outputAction", "summary_only")),
    good(
        "append-row-csv",
        setting("spec.appendRowFormat", "csv"),
        setting("spec.appendRowFileName", "results.csv"),
    ),
    good("file-name-spaces-and-dots", setting("spec.appendRowFileName", "my results.v2.txt")),
    good("file-name-three-dots", setting("spec.appendRowFileName", "...")),
    good("node-count-at-the-maximum", setting("spec.nodeCount", 1000),
         setting("spec.processCountPerNode", 256)),
    good("progress-update-timeout", setting("spec.progressUpdateTimeout", 1800)),
    good("file-name-prs-prefix", setting("spec.appendRowFileName", "_prs.txt")),
    good("entry-script-in-a-sub-folder", setting("spec.code.entryScript", "pkg/score.py")),
    good("entry-script-dots-in-names", setting("spec.code.entryScript", "pkg..v2/..score.py")),
    good("env-prs-in-lower-case", setting("spec.env", [{"name": "prs_mode", "value": "x"}])),
    good(
        "thresholds-zero",
        setting("spec.errorThreshold", 0),
        setting("spec.miniBatchErrorThreshold", 0),
        setting("spec.allowedFailedPercent", 0),
    ),
    good(
        "thresholds-large",
        setting("spec.errorThreshold", 1000),
        setting("spec.miniBatchErrorThreshold", 5),
    ),
    good("allowed-failed-percent-fraction", setting("spec.allowedFailedPercent", 12.5)),
    good("max-shard-retries-0", setting("spec.maxShardRetries", 0)),
    good("run-limits", setting("spec.runMaxTry", 1), setting("spec.runInvocationTimeout", 1)),
    good("many-nodes", setting("spec.nodeCount", 64), setting("spec.processCountPerNode", 8)),
    good("logging-debug", setting("spec.loggingLevel", "DEBUG")),
    good("logging-warning", setting("spec.loggingLevel", "WARNING")),
    good("no-reuse-suspended", setting("spec.allowReuse", False), setting("spec.suspend", True)),
    good("ttl-0", setting("spec.ttlSecondsAfterFinished", 0)),
    good("ttl-null", setting("spec.ttlSecondsAfterFinished", None)),
    good("name-3-chars", setting("metadata.name", "abc")),
    good("name-48-chars", setting("metadata.name", "p" + "-0" * 23 + "x")),
    good("env-without-value", setting("spec.env", [{"name": "DEBUG"}])),
    good(
        "env-several",
        setting("spec.env", [{"name": "A_B", "value": ""}, {"name": "c.d-e", "value": "x"}]),
    ),
    good(
        "side-inputs-several",
        setting(
            "spec.sideInputs",
            [
                {"name": "model", "uri": "s3://bucket/model.joblib"},
                {"name": "labels.v2", "uri": "./labels.txt"},
            ],
        ),
    ),
    good("arguments-empty", setting("spec.arguments", [])),
    good(
        "nulls-are-absent",
        setting("spec.nodeCount", None),
        setting("spec.miniBatchSize", None),
        setting("spec.allowReuse", None),
        setting("spec.arguments", None),
        setting("spec.resources", None),
        setting("spec.input.glob", None),
        setting("spec.input.partitionKeys", None),
        setting("spec.input.format", None),
        setting("spec.code.configMap", None),
        setting("spec.env", [{"name": "A", "value": None}]),
    ),
    good("image", setting("spec.image", "ghcr.io/example/prs-runner:0.1.0")),
    good("pod-template-credentials", setting("spec.podTemplate", {
        "serviceAccountName": "batch-reader",
        "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {
            "secretKeyRef": {"name": "s3", "key": "id"}}}],
        "envFrom": [{"secretRef": {"name": "s3-endpoint"}}],
        "imagePullSecrets": [{"name": "registry"}],
    })),
    good(
        "resources-and-pod-template",
        setting("spec.resources", {"requests": {"cpu": "500m"}, "limits": {"nvidia.com/gpu": 1}}),
        setting(
            "spec.podTemplate",
            {
                "labels": {"team": "ml"},
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": "batch-low",
            },
        ),
    ),
]


# Fields of a created step and a new value for each: changing any of them must be rejected
# ("spec.<field>: is immutable"), while `suspend` may change.
IMMUTABLE_UPDATES: list[tuple[str, Any]] = [
    ("nodeCount", 3),
    ("processCountPerNode", 4),
    ("miniBatchSize", "20"),
    ("errorThreshold", 5),
    ("allowedFailedPercent", 50),
    ("outputAction", "summary_only"),
    ("appendRowFileName", "other.txt"),
    ("loggingLevel", "DEBUG"),
    ("runMaxTry", 5),
    ("allowReuse", False),
    ("arguments", ["--x"]),
    ("env", [{"name": "A", "value": "1"}]),
    ("sideInputs", [{"name": "model", "uri": "./m"}]),
    ("resources", {"limits": {"cpu": "1"}}),
    ("podTemplate", {"labels": {"a": "b"}}),
    ("ttlSecondsAfterFinished", 60),
    ("progressUpdateTimeout", 900),
    ("startupTimeout", 60),
    ("image", "example/runner:1"),
    ("code.entryScript", "other.py"),
    ("code.sourceDirectory", "./other"),
    ("input.uri", "./other"),
    ("input.glob", "*.jpg"),
    ("output.uri", "./other-out"),
]
