"""`prs submit`'s pure parts: the code archive and the document sent to the cluster."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from prs_operator.submit import cluster_document, code_config_map
from prs_runner.step.spec import SpecError, Step
from prs_runner.step.validation import step_from_document
from prs_runner.storage.code_archive import pack_directory


def make_step(tmp_path: Path, **uris: str) -> Step:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "score.py").write_text("def run(b):\n    return b\n")
    (tmp_path / "src" / "pkg" / "model.py").write_text("X = 1\n")
    spec = {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
            "input": {"type": "files", "uri": uris.get("input", "pvc://data/in")},
            "output": {"uri": uris.get("output", "pvc://data/out")}}
    return step_from_document({"apiVersion": "parallelrun.io/v1alpha1",
                               "kind": "ParallelRunStep", "metadata": {"name": "abc"},
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
    step = make_step(tmp_path, **uris)
    with pytest.raises(SpecError) as raised:
        cluster_document(step, "c")
    [problem] = raised.value.problems  # only the local one, and it names its field
    assert problem.startswith(f"{field}: the local path ")
