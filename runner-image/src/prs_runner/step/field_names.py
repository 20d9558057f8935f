"""What an unknown field name was probably meant to be. Pure.

Users coming from Azure write its names (`mini_batch_size`, `node_count`,
`max_concurrency_per_instance`); others mistype ours (`minibatchSize`). Each gets the field
to write instead, so the first `prs validate` says what to change."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence

# Azure's names (v1 ParallelRunConfig, v2 parallel job) whose equivalent is not their
# camelCase spelling, or lives in a section: the field (path under spec) to use instead.
AZURE_NAMES: dict[str, str] = {
    "instance_count": "nodeCount",
    "max_concurrency_per_instance": "processCountPerNode",
    "allowed_failed_count": "miniBatchErrorThreshold",
    "retry_settings": "runMaxTry (tries, Azure's max_retries + 1) and runInvocationTimeout",
    "max_retries": "runMaxTry (tries, Azure's max_retries + 1)",
    "maxRetries": "runMaxTry (tries, Azure's max_retries + 1)",
    "environment_variables": "env",
    "program_arguments": "arguments",
    "entry_script": "code.entryScript",
    "source_directory": "code.sourceDirectory",
    "partition_keys": "input.partitionKeys",
    "input_data": "input.uri",
    "inputs": "input",
    "outputs": "output",
    "append_row_to": "output.uri",
    "environment": "image",
}
CLOSE_MATCH = 0.8  # difflib ratio: a typo or two in a name of ten letters


def camel_case(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def field_placements(top: Collection[str],
                     sections: Mapping[str, Collection[str]]) -> dict[str, list[str]]:
    """Each field's paths under spec, top level first: {'uri': ['input.uri', 'output.uri']}."""
    placements: dict[str, list[str]] = {name: [name] for name in sorted(top)}
    for section, fields in sorted(sections.items()):
        for name in sorted(fields):
            placements.setdefault(name, []).append(f"{section}.{name}")
    return placements


def suggestion(name: str, known: Collection[str], section: str = "",
               placements: Mapping[str, Sequence[str]] | None = None) -> str:
    """'; did you mean X?' for NAME under spec[.SECTION], or '' when nothing fits.

    PLACEMENTS maps each field of the spec to its paths under spec (`uri` ->
    `input.uri`, `output.uri`): a field written at the wrong level (`spec.entryScript`)
    gets the place it belongs, which no spelling check would find."""
    prefix = f"spec.{section}." if section else "spec."
    if not section and name in AZURE_NAMES:
        return f"; did you mean spec.{AZURE_NAMES[name]}? ({name} is Azure's name)"
    camel = camel_case(name)
    if camel != name and camel in known:
        return f"; did you mean {prefix}{camel}? ({name} is Azure's spelling)"
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return f"; did you mean {prefix}{by_lower[name.lower()]}?"
    paths = (placements or {}).get(camel_case(name))  # the same name when it is camelCase
    if paths:
        return f"; did you mean {' or '.join(f'spec.{path}' for path in paths)}?"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=CLOSE_MATCH)
    return f"; did you mean {prefix}{close[0]}?" if close else ""
