"""Azure's bindings in a script's arguments: `${{inputs.NAME}}` and `${{outputs.NAME}}`.
Pure.

On Azure a parallel job's `program_arguments` name its inputs and outputs so; the runtime
puts their mounted paths in. Here `${{inputs.NAME}}` is the local path of the side input
NAME (its local copy when it is on object storage), `${{outputs.NAME}}` the worker's
output folder (PRS_OUTPUT_DIR) and `${{input}}` the step's own input (`spec.input.uri`) as
the workers see it: its local folder or file, or its URI on object storage (Azure's name
for it, `${{inputs.<input_data>}}`, is written so by `prs convert`). All are filled in when
the worker starts: the same step runs under `prs run` and in a pod, wherever it started."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

BINDING = re.compile(r"\$\{\{\s*([^{}]*?)\s*\}\}")
INPUT = re.compile(r"inputs\.([A-Za-z_][A-Za-z0-9_.-]*)")
OUTPUT = re.compile(r"outputs\.[A-Za-z_][A-Za-z0-9_.-]*")
MAIN_INPUT = "input"  # ${{input}}: the step's input


def binding_problems(arguments: Sequence[str], side_inputs: Collection[str]) -> list[str]:
    """Bindings that cannot be filled in: another form, or an input that is no side input."""
    problems = []
    for argument in arguments:
        for found in BINDING.finditer(argument):
            reference = found[1]
            named = INPUT.fullmatch(reference)
            if named and named[1] not in side_inputs:
                problems.append(f"spec.arguments: {found[0]} names no side input (add "
                                f"{named[1]} to spec.sideInputs)")
            elif not named and not OUTPUT.fullmatch(reference) and reference != MAIN_INPUT:
                problems.append(f"spec.arguments: {found[0]}: only ${{{{inputs.NAME}}}} (a side "
                                "input), ${{input}} and ${{outputs.NAME}} are filled in here")
    return problems


def bind_arguments(arguments: Sequence[str], side_inputs: Mapping[str, str],
                   output_dir: str, input_path: str) -> list[str]:
    """ARGUMENTS with each binding replaced (SIDE_INPUTS: name -> local path; INPUT_PATH:
    the step's input); one that cannot be filled in stays as written (validation refused it
    already)."""

    def value(found: re.Match[str]) -> str:
        named = INPUT.fullmatch(found[1])
        if named and named[1] in side_inputs:
            return side_inputs[named[1]]
        if found[1] == MAIN_INPUT:
            return input_path
        return output_dir if OUTPUT.fullmatch(found[1]) else found[0]

    return [BINDING.sub(value, argument) for argument in arguments]
