"""Azure's ${{inputs.NAME}} / ${{outputs.NAME}} in arguments: checked, then filled in."""

from __future__ import annotations

import pytest

from prs_runner.step.argument_bindings import bind_arguments, binding_problems

SIDES = {"model": "/tmp/side/model", "vocab.v2": "/tmp/side/vocab.txt"}


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--model", "${{inputs.model}}"], ["--model", "/tmp/side/model"]),
    (["--model=${{ inputs.model }}/v1"], ["--model=/tmp/side/model/v1"]),
    (["${{inputs.vocab.v2}}", "${{outputs.scores}}"], ["/tmp/side/vocab.txt", "/out"]),
    (["--out", "${{outputs.any_name}}/part"], ["--out", "/out/part"]),
    (["${{inputs.model}}:${{inputs.model}}"], ["/tmp/side/model:/tmp/side/model"]),
    (["${{inputs.missing}}", "${{parent.inputs.x}}"], ["${{inputs.missing}}",
                                                        "${{parent.inputs.x}}"]),
    (["$model", "{{inputs.model}}", "${inputs.model}"],
     ["$model", "{{inputs.model}}", "${inputs.model}"]),  # not bindings
    (["--data", "${{input}}", "--data=${{ input }}/part"],
     ["--data", "/data/in", "--data=/data/in/part"]),
    (["${{inputs}}", "${{inputs.input}}"], ["${{inputs}}", "${{inputs.input}}"]),
    ([], []),
])
def test_bind_arguments(arguments: list[str], expected: list[str]) -> None:
    assert bind_arguments(arguments, SIDES, "/out", "/data/in") == expected


@pytest.mark.parametrize(("arguments", "problems"), [
    (["--model", "${{inputs.model}}", "--out", "${{outputs.o}}", "${{ input }}"], []),
    (["${{inputs.labels}}"],
     ["spec.arguments: ${{inputs.labels}} names no side input (add labels to "
      "spec.sideInputs)"]),
    (["${{parent.inputs.x}}", "${{ jobs.a.outputs.b }}"],
     ["spec.arguments: ${{parent.inputs.x}}: only ${{inputs.NAME}} (a side input), "
      "${{input}} and ${{outputs.NAME}} are filled in here",
      "spec.arguments: ${{ jobs.a.outputs.b }}: only ${{inputs.NAME}} (a side input), "
      "${{input}} and ${{outputs.NAME}} are filled in here"]),
    (["${{}}"], ["spec.arguments: ${{}}: only ${{inputs.NAME}} (a side input), "
                 "${{input}} and ${{outputs.NAME}} are filled in here"]),
    (["${{inputs.}}"], ["spec.arguments: ${{inputs.}}: only ${{inputs.NAME}} (a side input), "
                        "${{input}} and ${{outputs.NAME}} are filled in here"]),
])
def test_binding_problems(arguments: list[str], problems: list[str]) -> None:
    assert binding_problems(arguments, ["model", "vocab.v2"]) == problems
