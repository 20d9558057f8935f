"""`prs submit`'s pure parts: the code archive and the document sent to the cluster."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from prs_operator.submit import cluster_document, code_config_map, follow, target_namespace
from prs_runner.step.spec import SpecError, Step
from prs_runner.step.validation import step_from_document
from prs_runner.storage.code_archive import ARCHIVE_NAME, pack_directory, unpack_code_root


def make_step(tmp_path: Path, metadata: dict[str, Any] | None = None, **uris: str) -> Step:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "score.py").write_text("def run(b):\n    return b\n")
    (tmp_path / "src" / "pkg" / "model.py").write_text("X = 1\n")
    spec = {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
            "input": {"type": "files", "uri": uris.get("input", "pvc://data/in")},
            "output": {"uri": uris.get("output", "pvc://data/out")}}
    return step_from_document({"apiVersion": "parallelrun.io/v1alpha1",
                               "kind": "ParallelRunStep",
                               "metadata": {"name": "abc", **(metadata or {})},
                               "spec": spec}, tmp_path)


def test_the_archive_is_byte_stable_and_keeps_sub_folders(tmp_path: Path) -> None:
    make_step(tmp_path)
    first = pack_directory(str(tmp_path / "src"))
    (tmp_path / "src" / "score.py").touch()  # a new mtime changes nothing
    assert pack_directory(str(tmp_path / "src")) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        assert sorted(archive.getnames()) == ["pkg/model.py", "score.py"]


def test_the_config_map_is_named_by_content_and_the_step_points_at_it(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    found = code_config_map(step)
    assert found is not None
    name, config_map = found
    assert name.startswith("prs-code-") and config_map["immutable"] is True
    document = cluster_document(step, name)
    assert document["spec"]["code"] == {"entryScript": "score.py", "configMap": name}
    (tmp_path / "src" / "score.py").write_text("changed\n")
    other = code_config_map(step)
    assert other is not None and other[0] != name


@pytest.mark.parametrize(("uris", "field"), [
    ({"input": "./data"}, "spec.input.uri"),
    ({"output": "out/x"}, "spec.output.uri"),
])
def test_local_paths_are_refused_naming_the_field(
    tmp_path: Path, uris: dict[str, str], field: str
) -> None:
    step = make_step(tmp_path, None, **uris)
    with pytest.raises(SpecError) as raised:
        cluster_document(step, "c")
    [problem] = raised.value.problems  # only the local one, and it names its field
    assert problem.startswith(f"{field}: the local path ")


def test_labels_and_annotations_travel_with_the_step(tmp_path: Path) -> None:
    step = make_step(tmp_path, metadata={
        "labels": {"kueue.x-k8s.io/queue-name": "team-a"}, "annotations": {"owner": "me"},
        "namespace": "ml"})
    metadata = cluster_document(step, "c")["metadata"]
    assert metadata == {"name": "abc", "labels": {"kueue.x-k8s.io/queue-name": "team-a"},
                        "annotations": {"owner": "me"}}  # the namespace goes in the URL


@pytest.mark.parametrize(("written", "flag", "expected"), [
    ("ml", None, "ml"),
    (None, "team", "team"),
    ("ml", "ml", "ml"),
])
def test_the_namespace_is_the_flag_or_the_steps(
    tmp_path: Path, written: str | None, flag: str | None, expected: str
) -> None:
    step = make_step(tmp_path, metadata={"namespace": written} if written else {})
    assert target_namespace(step, flag) == expected


def test_a_namespace_flag_that_contradicts_the_step_is_refused(tmp_path: Path) -> None:
    step = make_step(tmp_path, metadata={"namespace": "ml"})
    with pytest.raises(SpecError) as raised:
        target_namespace(step, "other")
    assert raised.value.problems[0].startswith("metadata.namespace: the step says 'ml'")


def test_code_too_large_for_a_config_map_says_the_limit_and_what_to_do(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    (tmp_path / "src" / "weights.bin").write_bytes(os.urandom(900_000))  # does not compress
    with pytest.raises(SpecError) as raised:
        code_config_map(step)
    [problem] = raised.value.problems
    assert problem.startswith("code.sourceDirectory: ./src packs to 0.9 MiB")
    assert "sideInputs" in problem and "code.path" in problem


class StatusReads:
    """Stands in for the API server's GET of the step (only its status is read), so the
    follow loop's decisions can be checked without a cluster; the cluster tier runs
    `prs submit --wait` against the real API server."""

    def __init__(self, *statuses: dict[str, Any]) -> None:
        self.statuses = list(statuses)

    def get_namespaced_custom_object(self, *_: object) -> dict[str, Any]:
        return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}


def test_waiting_on_a_step_no_operator_picks_up_says_so_instead_of_waiting_an_hour() -> None:
    out = io.StringIO()
    code = follow(StatusReads({}), "ml", "abc", 3600, out, pickup_timeout=0)
    assert code == 3
    assert "no operator has picked up the step after 0 s" in out.getvalue()
    assert "namespace ml" in out.getvalue()


def test_a_step_with_conditions_is_followed_to_its_end() -> None:
    done = {"phase": "Succeeded", "message": "10/10",
            "conditions": [{"type": "Complete", "status": "True"}]}
    out = io.StringIO()
    assert follow(StatusReads(done), "ml", "abc", 3600, out, pickup_timeout=0) == 0
    assert out.getvalue() == "Succeeded: 10/10\n"


def test_the_code_unpacks_without_extraction_filters(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11.2 (Debian bookworm's, the local base image's) has no tarfile filters."""
    make_step(tmp_path)
    (tmp_path / "pod").mkdir()
    (tmp_path / "pod" / ARCHIVE_NAME).write_bytes(pack_directory(str(tmp_path / "src")))
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the pod's /tmp
    unpacked = Path(unpack_code_root(str(tmp_path / "pod")))
    assert (unpacked / "pkg" / "model.py").read_text() == "X = 1\n"
    assert (unpacked / "score.py").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name, kind", [("../escape.py", tarfile.REGTYPE),
                                        ("/etc/passwd", tarfile.REGTYPE),
                                        ("link.py", tarfile.SYMTYPE)])
def test_only_plain_files_inside_are_unpacked_without_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, kind: bytes) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        archive.addfile(info, io.BytesIO(b""))
    (tmp_path / ARCHIVE_NAME).write_bytes(buffer.getvalue())
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "pod-tmp"))
    (tmp_path / "pod-tmp").mkdir()
    with pytest.raises(ValueError, match="refusing to unpack"):
        unpack_code_root(str(tmp_path))
    assert not list((tmp_path / "pod-tmp").iterdir())  # nothing half-unpacked is left
