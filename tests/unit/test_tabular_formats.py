"""Which tabular format a listing holds, from its file names alone."""

from __future__ import annotations

import pytest

from prs_runner.planning.tabular_formats import guess_format


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["a.csv"], "csv"),
        (["a.parquet"], "parquet"),
        (["a.pq"], "parquet"),
        (["a.jsonl"], "jsonl"),
        (["a.ndjson"], "jsonl"),
        (["A.CSV", "b.Csv"], "csv"),
        (["x.PARQUET", "y.Pq"], "parquet"),
        (["sales.2024-01.csv", "sales.2024-02.csv"], "csv"),
        (["export.tar.parquet"], "parquet"),
        (["2024.01/part.0.parquet", "2024.02/part.1.pq"], "parquet"),
        (["s3://bucket/v1.2/data.jsonl"], "jsonl"),
        (["dir with spaces/a file.csv"], "csv"),
        (["a.csv", "b/c.csv", "d/e/f.csv"], "csv"),
    ],
    ids=["csv", "parquet", "pq", "jsonl", "ndjson", "upper-case-csv", "upper-case-parquet",
         "dots-in-name", "last-suffix-counts", "dots-in-folders", "uri", "spaces",
         "nested-folders"],
)
def test_one_format_for_the_whole_listing(paths: list[str], expected: str) -> None:
    assert guess_format(paths) == expected


@pytest.mark.parametrize(
    "paths",
    [
        [],
        ["a.csv", "b.parquet"],
        ["a.jsonl", "b.csv"],
        ["a.csv", "README"],
        ["a.csv", "notes.txt"],
        ["README"],
        ["data.csv/part-00000"],
        ["a.csv.gz"],
        ["a.tsv"],
        ["a.json"],
        ["a."],
        [".csv/x"],
        ["a.csv/"],
    ],
    ids=["empty", "csv-and-parquet", "jsonl-and-csv", "csv-and-no-suffix", "csv-and-txt",
         "no-suffix", "suffix-only-on-folder", "compressed", "tsv", "json", "trailing-dot",
         "folder-named-csv", "trailing-slash"],
)
def test_no_format_when_names_disagree_or_say_nothing(paths: list[str]) -> None:
    assert guess_format(paths) is None


def test_a_listing_can_be_any_iterable() -> None:
    assert guess_format(p for p in ("a.pq", "b.parquet")) == "parquet"

