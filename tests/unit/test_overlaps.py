"""An output the runner would read back as input, or that sits in the code, is refused."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.step.validation import check_overlaps, normalized


def spec(output: str, input_uri: str = "/p/data", code: str = "/p/src",
         sides: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"input": {"uri": input_uri}, "output": {"uri": output},
            "code": {"sourceDirectory": code},
            "sideInputs": [{"name": f"s{i}", "uri": u} for i, u in enumerate(sides)]}


@pytest.mark.parametrize(("case", "fields"), [
    (spec("/p/out"), []),
    (spec("/p/data"), ["spec.input.uri"]),
    (spec("/p/data/"), ["spec.input.uri"]),
    (spec("/p/data/out"), ["spec.input.uri"]),
    (spec("/p/data-out"), []),  # a sibling with a longer name is outside
    (spec("/p"), []),  # the input inside the output is never touched by the runner
    (spec("/p/src"), ["spec.code.sourceDirectory"]),
    (spec("/p/src/out"), ["spec.code.sourceDirectory"]),
    (spec("/p/model/out", sides=("/p/model",)), ["spec.sideInputs[s0].uri"]),
    (spec("/out", input_uri="/"), ["spec.input.uri"]),
    (spec("pvc://data/in/out", input_uri="pvc://data/in"), ["spec.input.uri"]),
    (spec("pvc://data/out", input_uri="pvc://data/in"), []),
    (spec("s3://bucket/in/x", input_uri="s3://bucket/in/"), ["spec.input.uri"]),
    (spec("s3://bucket/in", input_uri="gs://bucket/in"), []),
    # One Azure container, spelled two ways: the second run read the first's output
    (spec("az://box/in/out", input_uri="abfs://box@acct.dfs.core.windows.net/in"),
     ["spec.input.uri"]),
    (spec("abfss://box@acct.blob.core.windows.net/in/", input_uri="az://box/in"),
     ["spec.input.uri"]),
    (spec("az://box/in2", input_uri="abfs://box@acct.dfs.core.windows.net/in"), []),
    (spec("az://other/in/out", input_uri="az://box/in"), []),
    (spec("file:///p/data/out"), ["spec.input.uri"]),
    (spec("/p/./data//out"), ["spec.input.uri"]),
], ids=lambda v: str(v) if isinstance(v, list) else v["output"]["uri"])
def test_overlaps_name_both_fields(case: dict[str, Any], fields: list[str]) -> None:
    problems = check_overlaps(case)
    assert [p.split(" is inside ")[1].split(" (")[0] for p in problems] == fields
    for problem in problems:
        assert problem.startswith(f"spec.output.uri: {case['output']['uri']} is inside ")
        assert problem.endswith("every run would read its own results back; "
                                "choose an output outside it")


@pytest.mark.parametrize(("uri", "expected"), [
    ("/a/b/", "/a/b"), ("/a//b/./c", "/a/b/c"), ("/", "/"), ("file:///x/y", "/x/y"),
    ("s3://bucket/p/", "s3://bucket/p"), ("rel/dir", "rel/dir"),
    ("abfs://box@acct.dfs.core.windows.net/p/q/", "az://box/p/q"), ("az://box", "az://box"),
    ("abfs://box/p", "abfs://box/p"),  # not a URI the runner takes: compared as written
])
def test_normalized(uri: str, expected: str) -> None:
    assert normalized(uri) == expected


@pytest.mark.parametrize(("case", "field"), [
    ({**spec("/p/out", input_uri="/p/out/result.txt"), "appendRowFileName": "result.txt"},
     "spec.input.uri"),
    (spec("/p/out", input_uri="/p/out/_prs/plan.json"), "spec.input.uri"),
    (spec("/p/out", input_uri="/p/out/parallel_run_step.txt"), "spec.input.uri"),  # default
    (spec("/", input_uri="/_prs"), "spec.input.uri"),
    (spec("/p/out", input_uri="/p/out/_prs"), "spec.input.uri"),
    (spec("s3://b/out", code="s3://b/out/_prs/code"), "spec.code.sourceDirectory"),
    (spec("/p/out/", sides=("/p/out//_prs/x",)), "spec.sideInputs[s0].uri"),
])
def test_a_source_that_runs_replace_is_refused(case: dict[str, Any], field: str) -> None:
    """An input that is the output's own merged file was deleted by the run that should
    have read it (every run() then failed on a missing file)."""
    [problem] = check_overlaps(case)
    assert problem.startswith(f"{field}: ")
    assert problem.endswith(f"is what a run writes in spec.output.uri ({case['output']['uri']})"
                            ": each run replaces it; move it out of there")


@pytest.mark.parametrize("case", [
    {**spec("/p/out", input_uri="/p/out/data"), "appendRowFileName": "result.txt"},
    {**spec("/p/out", input_uri="/p/out/result.txt.old"), "appendRowFileName": "result.txt"},
    spec("/p/out", input_uri="/p/out/_prs_old"),
])
def test_the_rest_of_the_output_folder_may_hold_sources(case: dict[str, Any]) -> None:
    assert check_overlaps(case) == []
