"""The fingerprint behind `allowReuse`: what makes two runs interchangeable, and what does not."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from prs_runner.planning.fingerprint import (
    RUNTIME_FIELDS,
    compute_fingerprint,
    listing_digest,
    result_parameters,
)
from prs_runner.step.spec import DEFAULTS
from prs_runner.storage.filesystem import FileEntry

SPEC: dict[str, Any] = {
    **DEFAULTS,
    "image": "registry/score:1",
    "code": {"entryScript": "score.py", "sourceDirectory": "/src"},
    "input": {"type": "files", "uri": "/data/in", "glob": "**/*.png"},
    "output": {"uri": "/data/out"},
    "miniBatchSize": "10",
    "sideInputs": [{"name": "model", "uri": "/models/m"}, {"name": "labels", "uri": "/l"}],
}
def digests(files: Sequence[tuple[str, bytes]]) -> list[tuple[str, str]]:
    return [(path, hashlib.sha256(data).hexdigest()) for path, data in files]


CODE = [("score.py", b"def run(b):\n    return b\n"), ("pkg/util.py", b"X = 1\n")]
LISTING = [FileEntry("a.png", 10, 1_000), FileEntry("b/c.png", 20, 2_000)]
SIDES: dict[str, list[FileEntry]] = {
    "model": [FileEntry("weights.bin", 300, 3_000)],
    "labels": [FileEntry("labels.txt", 4, 4_000)],
}


def fingerprint(
    spec: Mapping[str, Any] = SPEC,
    code: Sequence[tuple[str, bytes]] = CODE,
    listing: Sequence[FileEntry] = LISTING,
    sides: Mapping[str, Sequence[FileEntry]] = SIDES,
) -> str:
    return compute_fingerprint(spec, digests(code), listing, sides)


def test_the_fingerprint_of_a_fixed_run_never_changes() -> None:
    # Fingerprints are stored with every result and compared by later runs, also of later
    # runner versions: changing how they are computed silently turns off reuse of every
    # existing output, so a change here has to be deliberate.
    assert fingerprint() == (
        "sha256:1f96ed2e225a5773979dc4295542e9947b22bf6a9fe89cc490b5f7fb2bf456eb"
    )


def test_result_parameters_keep_what_changes_results() -> None:
    expected = {
        "image": "registry/score:1",
        "sideInputs": ["labels", "model"],  # names only: the files are in their listings
        "errorThreshold": -1,
        "miniBatchErrorThreshold": -1,
        "allowedFailedPercent": 100,
        "outputAction": "append_row",
        "appendRowFileName": "parallel_run_step.txt",
        "appendRowFormat": "text",
        "runInvocationTimeout": 60,
        "runMaxTry": 3,
        "arguments": [],
        "env": [],
        "code": {"entryScript": "score.py"},  # the source folder is in the code bytes
        "input": {"type": "files", "glob": "**/*.png"},  # the uri is in the listing
        "miniBatchSize": "10",
    }
    assert result_parameters(SPEC) == expected


def test_result_parameters_without_side_inputs() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "sideInputs"}
    assert result_parameters(spec)["sideInputs"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nodeCount", 8),
        ("processCountPerNode", 4),
        ("loggingLevel", "DEBUG"),
        ("suspend", True),
        ("ttlSecondsAfterFinished", 60),
        ("resources", {"limits": {"nvidia.com/gpu": 1}}),
        ("podTemplate", {"spec": {"nodeSelector": {"pool": "gpu"}}}),
        ("allowReuse", False),
        ("maxShardRetries", 0),
        ("output", {"uri": "/elsewhere"}),
    ],
)
def test_how_and_where_a_step_runs_keeps_the_fingerprint(field: str, value: Any) -> None:
    assert field in RUNTIME_FIELDS
    assert fingerprint({**SPEC, field: value}) == fingerprint()


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({**SPEC, "input": {**SPEC["input"], "uri": "s3://b/in"}}, id="input-moved"),
        pytest.param({**SPEC, "code": {**SPEC["code"], "sourceDirectory": "/elsewhere"}},
                     id="code-folder-moved"),
        pytest.param({**SPEC, "sideInputs": [{"name": "model", "uri": "s3://m"},
                                             {"name": "labels", "uri": "pvc://c/l"}]},
                     id="side-inputs-moved"),
        pytest.param({**SPEC, "sideInputs": SPEC["sideInputs"][::-1]}, id="side-inputs-reordered"),
        pytest.param(dict(reversed(SPEC.items())), id="spec-keys-reordered"),
    ],
)
def test_moved_or_reordered_inputs_keep_the_fingerprint(spec: dict[str, Any]) -> None:
    assert fingerprint(spec) == fingerprint()


def test_code_files_and_side_inputs_in_another_order_keep_the_fingerprint() -> None:
    assert fingerprint(code=CODE[::-1]) == fingerprint()
    assert fingerprint(sides=dict(reversed(SIDES.items()))) == fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"image": "registry/score:2"}, id="image"),
        pytest.param({"code": {"entryScript": "other.py", "sourceDirectory": "/src"}},
                     id="entry-script"),
        pytest.param({"miniBatchSize": "5"}, id="mini-batch-size"),
        pytest.param({"arguments": ["--threshold", "0.5"]}, id="arguments"),
        pytest.param({"env": [{"name": "MODE", "value": "fast"}]}, id="env"),
        pytest.param({"errorThreshold": 3}, id="error-threshold"),
        pytest.param({"runMaxTry": 1}, id="run-max-try"),
        pytest.param({"outputAction": "summary_only"}, id="output-action"),
        pytest.param({"input": {"type": "files", "uri": "/data/in", "glob": "*.jpg"}},
                     id="input-glob"),
        pytest.param({"input": {"type": "tabular", "uri": "/data/in", "glob": "**/*.png"}},
                     id="input-type"),
        pytest.param({"sideInputs": [{"name": "model", "uri": "/models/m"}]},
                     id="side-input-dropped"),
        pytest.param({"sideInputs": [{"name": "weights", "uri": "/models/m"},
                                     {"name": "labels", "uri": "/l"}]},
                     id="side-input-renamed"),
    ],
)
def test_parameters_that_change_results_change_the_fingerprint(change: dict[str, Any]) -> None:
    assert fingerprint({**SPEC, **change}) != fingerprint()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param([("score.py", b"def run(b):\n    return []\n"), CODE[1]], id="bytes"),
        pytest.param([("main.py", CODE[0][1]), CODE[1]], id="file-renamed"),
        pytest.param(CODE[:1], id="file-removed"),
        pytest.param([*CODE, ("pkg/__init__.py", b"")], id="empty-file-added"),
    ],
)
def test_other_code_changes_the_fingerprint(code: list[tuple[str, bytes]]) -> None:
    assert fingerprint(code=code) != fingerprint()


def changed(listing: list[FileEntry], **fields: Any) -> list[FileEntry]:
    """LISTING with its first entry's fields replaced."""
    first = listing[0]
    values = {"path": first.path, "size": first.size, "mtime_ns": first.mtime_ns, **fields}
    return [FileEntry(values["path"], values["size"], values["mtime_ns"]), *listing[1:]]


@pytest.mark.parametrize(
    "fields",
    [{"path": "a2.png"}, {"size": 11}, {"mtime_ns": 1_001}],
    ids=["name", "size", "mtime"],
)
def test_the_input_and_side_input_listings_change_the_fingerprint(fields: dict[str, Any]) -> None:
    assert fingerprint(listing=changed(LISTING, **fields)) != fingerprint()
    for name, side in SIDES.items():
        assert fingerprint(sides={**SIDES, name: changed(side, **fields)}) != fingerprint()


def test_an_added_or_removed_file_changes_the_fingerprint() -> None:
    assert fingerprint(listing=LISTING[:1]) != fingerprint()
    assert fingerprint(listing=[*LISTING, FileEntry("d.png", 0, 0)]) != fingerprint()
    assert fingerprint(sides={**SIDES, "labels": []}) != fingerprint()


def test_listing_digest_separates_the_fields() -> None:
    # Without separators "a1" of size 23 and "a12" of size 3 would digest alike.
    assert listing_digest([FileEntry("a1", 23, 0)]) != listing_digest([FileEntry("a12", 3, 0)])
    assert listing_digest([FileEntry("a", 1, 0), FileEntry("b", 1, 0)]) != listing_digest(
        [FileEntry("b", 1, 0), FileEntry("a", 1, 0)])
