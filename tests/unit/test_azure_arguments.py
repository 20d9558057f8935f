"""Azure's program arguments in spec.arguments: the ones with a field set it, the others get a
notice, bad values and conflicts are problems with their field path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from prs_runner.step.azure_arguments import (
    FIELD_ARGUMENTS,
    NOTICE_ARGUMENTS,
    apply_azure_arguments,
    argument_problems,
    read_azure_arguments,
    split_arguments,
)
from prs_runner.step.spec import DEFAULTS, apply_defaults
from prs_runner.step.validation import step_from_document, validate_document
from tests.spec_cases import good_document


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--allowed_failed_percent", "30"], [("--allowed_failed_percent", "30")]),
    (["--allowed_failed_percent=30"], [("--allowed_failed_percent", "30")]),
    (["--copy_logs_to_parent"], [("--copy_logs_to_parent", None)]),
    (["--run_max_try", "--copy_logs_to_parent", "True"],
     [("--run_max_try", None), ("--copy_logs_to_parent", "True")]),
    (["--run_max_try"], [("--run_max_try", None)]),
    (["--model", "m.pkl", "--threshold", "0.5"], []),  # the script's own
    (["--error_threshold=", "x"], [("--error_threshold", "")]),
])
def test_split_arguments(arguments: list[str], expected: list[tuple[str, str | None]]) -> None:
    assert split_arguments(arguments) == expected


@pytest.mark.parametrize(("arguments", "fields"), [
    (["--allowed_failed_percent", "30"], {"allowedFailedPercent": 30}),
    (["--allowed_failed_percent", "12.5"], {"allowedFailedPercent": 12.5}),
    (["--error_threshold", "-1"], {"errorThreshold": -1}),
    (["--allowed_failed_count", "3"], {"miniBatchErrorThreshold": 3}),
    (["--mini_batch_error_threshold=4"], {"miniBatchErrorThreshold": 4}),
    (["--run_invocation_timeout", "120", "--run_max_try", "5"],
     {"runInvocationTimeout": 120, "runMaxTry": 5}),
    (["--progress_update_timeout", "900"], {"progressUpdateTimeout": 900}),
    (["--logging_level", "debug"], {"loggingLevel": "DEBUG"}),
    (["--allowed_failed_count", "3", "--mini_batch_error_threshold", "3"],
     {"miniBatchErrorThreshold": 3}),  # the same value twice is no conflict
    (["--task_overhead_timeout", "30", "--model", "x"], {}),
])
def test_arguments_that_set_fields(arguments: list[str], fields: dict[str, Any]) -> None:
    read = read_azure_arguments(arguments)
    assert read.fields == fields
    assert read.problems == []


def test_each_argument_gets_one_notice() -> None:
    read = read_azure_arguments(["--run_max_try", "5", "--copy_logs_to_parent", "True",
                                 "--resource_monitor_interval=0", "--metrics_name_prefix", "x"])
    assert read.notices == [
        "spec.arguments: --run_max_try 5 sets spec.runMaxTry: 5",
        "spec.arguments: --copy_logs_to_parent True has no effect here: every worker's log "
        "is always kept in the output's _prs/logs/",
        "spec.arguments: --resource_monitor_interval 0 has no effect here: no resource "
        "monitor; use the cluster's own metrics (kubectl top, Prometheus)",
        "spec.arguments: --metrics_name_prefix x has no effect here: no Azure run metrics; "
        "the operator exports Prometheus metrics",
    ]


@pytest.mark.parametrize(("arguments", "problem"), [
    (["--run_max_try"], "spec.arguments: --run_max_try needs a value (an integer)"),
    (["--run_max_try", "many"], "spec.arguments: --run_max_try takes an integer (got 'many')"),
    (["--allowed_failed_percent", "1e"],
     "spec.arguments: --allowed_failed_percent takes a number (got '1e')"),
    (["--logging_level", "LOUD"],
     "spec.arguments: --logging_level takes WARNING, INFO or DEBUG (got 'LOUD')"),
    (["--allowed_failed_count", "3", "--mini_batch_error_threshold", "4"],
     "spec.arguments: --mini_batch_error_threshold 4 conflicts with --allowed_failed_count 3 "
     "(both set miniBatchErrorThreshold)"),
])
def test_bad_arguments(arguments: list[str], problem: str) -> None:
    read = read_azure_arguments(arguments)
    assert read.problems == [problem]
    assert read.fields == ({"miniBatchErrorThreshold": 3} if "conflicts" in problem else {})


def test_an_argument_sets_a_field_left_at_its_default() -> None:
    spec = apply_defaults({"arguments": ["--allowed_failed_percent", "30", "--run_max_try=5"],
                           "runMaxTry": 3})
    assert spec["allowedFailedPercent"] == 30
    assert spec["runMaxTry"] == 5  # 3 is the default: the API server writes it in


def test_a_field_set_otherwise_keeps_its_value_and_is_a_problem() -> None:
    raw = {"arguments": ["--allowed_failed_percent", "30"], "allowedFailedPercent": 50}
    assert apply_azure_arguments(raw, DEFAULTS)["allowedFailedPercent"] == 50
    assert argument_problems(raw, DEFAULTS) == [
        "spec.allowedFailedPercent: 50 conflicts with --allowed_failed_percent 30 in "
        "spec.arguments; remove one of them"]
    agreeing = {"arguments": ["--allowed_failed_percent", "30"], "allowedFailedPercent": 30}
    assert argument_problems(agreeing, DEFAULTS) == []


def test_arguments_that_are_not_strings_are_left_to_the_type_check() -> None:
    raw = {"arguments": ["--run_max_try", 5]}
    assert apply_azure_arguments(raw, DEFAULTS) == raw
    assert argument_problems(raw, DEFAULTS) == []
    assert argument_problems({"arguments": "--run_max_try 5"}, DEFAULTS) == []


def test_validation_reports_argument_problems_and_applies_the_rest() -> None:
    doc = good_document()
    doc["spec"]["arguments"] = ["--allowed_failed_percent", "130", "--run_max_try", "x"]
    assert validate_document(doc) == [
        "spec.arguments: --run_max_try takes an integer (got 'x')",
        "spec.allowedFailedPercent: must be within 0-100 (got 130)",
    ]
    doc["spec"]["arguments"] = ["--allowed_failed_percent", "30", "--model", "m.pkl"]
    step = step_from_document(doc)
    assert step.spec["allowedFailedPercent"] == 30
    assert step.spec["arguments"] == ["--allowed_failed_percent", "30", "--model", "m.pkl"]


def test_the_migration_guides_table_names_every_argument_and_what_it_does() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "migration.md").read_text()
    table = guide.split("## Azure's program arguments", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    said: dict[str, str] = {}
    for row in rows:
        names, effect = row.strip("| ").split(" | ", 1)
        for name in re.findall(r"`(--\w+)", names):
            said[name] = effect.strip(" |")
    assert set(said) == set(FIELD_ARGUMENTS) | set(NOTICE_ARGUMENTS)
    for name, (field, _) in FIELD_ARGUMENTS.items():
        assert said[name] == f"sets `{field}`", name
    for name in NOTICE_ARGUMENTS:
        assert said[name].startswith("notice only: "), name
