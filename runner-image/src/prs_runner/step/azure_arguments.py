"""Azure's ParallelRunStep program arguments, given in `spec.arguments`. Pure.

Azure's runtime reads some settings from the script's arguments (`--allowed_failed_percent
30`, `--run_max_try 5`...) and passes all of them on to the script, which picks its own with
`argparse.parse_known_args`. Here too the script sees every argument; those that map to a
field set it, the others are accepted with a notice, so none is ignored in silence.

An argument sets its field when the spec leaves the field at its default. A spec that sets
the field to another value conflicts: validation says so (the API server fills defaults in,
so a field written with its default value cannot be told apart, and the argument wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Argument -> (field, kind of value).
FIELD_ARGUMENTS: dict[str, tuple[str, str]] = {
    "--error_threshold": ("errorThreshold", "int"),
    "--allowed_failed_count": ("miniBatchErrorThreshold", "int"),
    "--mini_batch_error_threshold": ("miniBatchErrorThreshold", "int"),
    "--allowed_failed_percent": ("allowedFailedPercent", "number"),
    "--run_invocation_timeout": ("runInvocationTimeout", "int"),
    "--run_max_try": ("runMaxTry", "int"),
    "--progress_update_timeout": ("progressUpdateTimeout", "int"),
    "--logging_level": ("loggingLevel", "level"),
}
# Arguments with no field here -> what happens instead.
NOTICE_ARGUMENTS: dict[str, str] = {
    "--task_overhead_timeout": "no separate overhead timeout; runInvocationTimeout bounds "
                               "each run() call and progressUpdateTimeout a stalled shard",
    "--first_task_creation_timeout": "startupTimeout bounds how long a shard pod may take "
                                     "to start; init() is bounded by progressUpdateTimeout",
    "--copy_logs_to_parent": "every worker's log is always kept in the output's _prs/logs/",
    "--metrics_name_prefix": "no Azure run metrics; the operator exports Prometheus metrics",
    "--push_metrics_to_parent": "no Azure run metrics; the operator exports Prometheus metrics",
    "--resource_monitor_interval": "no resource monitor; use the cluster's own metrics "
                                   "(kubectl top, Prometheus)",
}
KINDS = {"int": "an integer", "number": "a number", "level": "WARNING, INFO or DEBUG"}


@dataclass(frozen=True)
class AzureArguments:
    """What a step's arguments say in Azure's terms."""

    fields: dict[str, Any] = field(default_factory=dict)  # field -> value
    given: dict[str, str] = field(default_factory=dict)  # field -> the argument as written
    notices: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def split_arguments(arguments: Sequence[str]) -> list[tuple[str, str | None]]:
    """(name, value) of each Azure argument in ARGUMENTS: `--name value` or `--name=value`;
    the value is None when none follows (the next word is another option, or nothing)."""
    found: list[tuple[str, str | None]] = []
    for index, word in enumerate(arguments):
        name, equals, value = word.partition("=")
        if name not in FIELD_ARGUMENTS and name not in NOTICE_ARGUMENTS:
            continue
        if equals:
            found.append((name, value))
            continue
        following = arguments[index + 1] if index + 1 < len(arguments) else None
        is_value = following is not None and not following.startswith("--")
        found.append((name, following if is_value else None))
    return found


def typed_value(kind: str, text: str) -> Any:
    """TEXT as a value of KIND; ValueError when it is not one."""
    if kind == "int":
        return int(text)
    if kind == "number":
        number = float(text)
        return int(number) if number.is_integer() else number
    if text.upper() not in ("WARNING", "INFO", "DEBUG"):
        raise ValueError(text)
    return text.upper()


def read_azure_arguments(arguments: Sequence[str]) -> AzureArguments:
    read = AzureArguments()
    for name, value in split_arguments(arguments):
        written = name if value is None else f"{name} {value}"
        if name in NOTICE_ARGUMENTS:
            read.notices.append(f"spec.arguments: {written} has no effect here: "
                                f"{NOTICE_ARGUMENTS[name]}")
            continue
        target, kind = FIELD_ARGUMENTS[name]
        if value is None:
            read.problems.append(f"spec.arguments: {name} needs a value ({KINDS[kind]})")
            continue
        try:
            typed = typed_value(kind, value)
        except ValueError:
            read.problems.append(f"spec.arguments: {name} takes {KINDS[kind]} (got {value!r})")
            continue
        if target in read.fields and read.fields[target] != typed:
            read.problems.append(f"spec.arguments: {written} conflicts with "
                                 f"{read.given[target]} (both set {target})")
            continue
        read.fields[target], read.given[target] = typed, written
        read.notices.append(f"spec.arguments: {written} sets spec.{target}: {typed}")
    return read


def apply_azure_arguments(spec: Mapping[str, Any], defaults: Mapping[str, Any]
                          ) -> dict[str, Any]:
    """SPEC with each field an argument sets, where SPEC leaves it at its default."""
    arguments = spec.get("arguments")
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        return dict(spec)
    out = dict(spec)
    for target, value in read_azure_arguments(arguments).fields.items():
        if out.get(target) == defaults.get(target):
            out[target] = value
    return out


def argument_problems(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Bad Azure arguments, and fields the spec sets to another value than an argument."""
    arguments = raw.get("arguments")
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        return []  # check_types reports it
    read = read_azure_arguments(arguments)
    problems = list(read.problems)
    for target, value in read.fields.items():
        given = raw.get(target, defaults.get(target))
        if given not in (value, defaults.get(target)):
            problems.append(f"spec.{target}: {given!r} conflicts with {read.given[target]} in "
                            "spec.arguments; remove one of them")
    return problems
