"""Unknown field names get the field the user meant: Azure's names, snake_case, typos."""

from __future__ import annotations

import pytest

from prs_runner.step.field_names import camel_case, field_placements, suggestion
from prs_runner.step.validation import TOP_LEVEL_FIELDS, validate_document
from tests.spec_cases import good_document

INPUT_FIELDS = {"type", "uri", "glob", "format", "partitionKeys"}


@pytest.mark.parametrize(("name", "section", "known", "expected"), [
    ("mini_batch_size", "", TOP_LEVEL_FIELDS,
     "; did you mean spec.miniBatchSize? (mini_batch_size is Azure's spelling)"),
    ("node_count", "", TOP_LEVEL_FIELDS,
     "; did you mean spec.nodeCount? (node_count is Azure's spelling)"),
    ("max_concurrency_per_instance", "", TOP_LEVEL_FIELDS,
     "; did you mean spec.processCountPerNode? (max_concurrency_per_instance is Azure's name)"),
    ("allowed_failed_count", "", TOP_LEVEL_FIELDS,
     "; did you mean spec.miniBatchErrorThreshold? (allowed_failed_count is Azure's name)"),
    ("entry_script", "", TOP_LEVEL_FIELDS,
     "; did you mean spec.code.entryScript? (entry_script is Azure's name)"),
    ("partition_keys", "input", INPUT_FIELDS,
     "; did you mean spec.input.partitionKeys? (partition_keys is Azure's spelling)"),
    ("nodecount", "", TOP_LEVEL_FIELDS, "; did you mean spec.nodeCount?"),
    ("maxRetries", "", TOP_LEVEL_FIELDS,  # not maxShardRetries: Azure's retries of run()
     "; did you mean spec.runMaxTry (tries, Azure's max_retries + 1)? (maxRetries is "
     "Azure's name)"),
    ("miniBatchSise", "", TOP_LEVEL_FIELDS, "; did you mean spec.miniBatchSize?"),
    ("URI", "input", INPUT_FIELDS, "; did you mean spec.input.uri?"),
    ("colour", "", TOP_LEVEL_FIELDS, ""),
    ("entry_script", "input", INPUT_FIELDS, ""),  # Azure's top-level names only at the top
], ids=lambda value: value if isinstance(value, str) and value else None)
def test_suggestion(name: str, section: str, known: set[str], expected: str) -> None:
    assert suggestion(name, known, section) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("mini_batch_size", "miniBatchSize"), ("run_max_try", "runMaxTry"),
    ("ttl_seconds_after_finished", "ttlSecondsAfterFinished"), ("nodeCount", "nodeCount"),
    ("gpu_2_count", "gpu2Count"),
])
def test_camel_case(name: str, expected: str) -> None:
    assert camel_case(name) == expected


def test_validation_reports_every_problem_at_once() -> None:
    """An Azure-style spec: the unknown names, a bad value elsewhere and a missing section
    come back together, each with its field path."""
    doc = good_document()
    spec = doc["spec"]
    spec["mini_batch_size"] = "10"
    spec["node_count"] = 2
    spec["loggingLevel"] = "LOUD"
    spec["input"]["partition_keys"] = ["Store"]
    del spec["output"]
    problems = validate_document(doc)
    assert problems == [
        "spec.mini_batch_size: unknown field; did you mean spec.miniBatchSize? "
        "(mini_batch_size is Azure's spelling)",
        "spec.node_count: unknown field; did you mean spec.nodeCount? "
        "(node_count is Azure's spelling)",
        "spec.input.partition_keys: unknown field; did you mean spec.input.partitionKeys? "
        "(partition_keys is Azure's spelling)",
        "spec.output: required",
        "spec.loggingLevel: must be one of WARNING, INFO, DEBUG (got 'LOUD')",
    ]


def test_a_section_that_is_not_an_object_reports_that_alone() -> None:
    doc = good_document()
    doc["spec"]["code"] = "score.py"
    doc["spec"]["nodeCount"] = 0
    assert validate_document(doc) == ["spec.code: must be an object",
                                      "spec.nodeCount: must be >= 1 (got 0)"]


PLACES = {"nodeCount": ["nodeCount"], "entryScript": ["code.entryScript"],
          "uri": ["input.uri", "output.uri"], "partitionKeys": ["input.partitionKeys"]}


@pytest.mark.parametrize(("name", "section", "known", "expected"), [
    ("entryScript", "", TOP_LEVEL_FIELDS, "; did you mean spec.code.entryScript?"),
    ("uri", "", TOP_LEVEL_FIELDS, "; did you mean spec.input.uri or spec.output.uri?"),
    ("nodeCount", "input", INPUT_FIELDS, "; did you mean spec.nodeCount?"),
    ("node_count", "input", INPUT_FIELDS, "; did you mean spec.nodeCount?"),
    # Nearer spellings at its own level come first: a typo there is likelier than a move.
    ("partitionkeys", "input", INPUT_FIELDS, "; did you mean spec.input.partitionKeys?"),
    ("colour", "", TOP_LEVEL_FIELDS, ""),
], ids=lambda value: value if isinstance(value, str) and value else None)
def test_a_field_at_the_wrong_level_gets_its_place(
    name: str, section: str, known: set[str], expected: str
) -> None:
    assert suggestion(name, known, section, PLACES) == expected


def test_the_top_level_is_the_default_section() -> None:
    assert suggestion("nodecount", TOP_LEVEL_FIELDS) == "; did you mean spec.nodeCount?"


def test_field_placements_lists_every_place_top_level_first() -> None:
    sections = {"output": {"uri"}, "input": {"uri", "glob"}}
    assert field_placements({"uri", "nodeCount"}, sections) == {
        "nodeCount": ["nodeCount"], "uri": ["uri", "input.uri", "output.uri"],
        "glob": ["input.glob"]}


def test_validation_places_fields_written_at_the_wrong_level() -> None:
    doc = good_document()
    doc["spec"]["entryScript"] = doc["spec"]["code"].pop("entryScript")
    doc["spec"]["input"]["nodeCount"] = 2
    assert validate_document(doc) == [
        "spec.entryScript: unknown field; did you mean spec.code.entryScript?",
        "spec.input.nodeCount: unknown field; did you mean spec.nodeCount?",
        "spec.code.entryScript: required",
    ]
