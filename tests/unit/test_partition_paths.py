"""Partition key values from a file's path: hive folders, Azure's partition_format, and
folders that hold values only (Azure's many-models layout)."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.planning.partition_paths import (
    format_regex,
    format_values,
    misspelt_columns,
    path_key_values,
    positional_values,
)
from prs_runner.planning.plan import TableSlice, plan_file_partitions
from prs_runner.step.spec import SpecError
from prs_runner.storage.filesystem import FileEntry


@pytest.mark.parametrize(("partition_format", "path", "expected"), [
    ("{Store}/{Brand}/*.csv", "1000/dominicks/p.csv", {"Store": "1000", "Brand": "dominicks"}),
    ("/{Store}/{Brand}/*.csv", "1000/dominicks/p.csv", {"Store": "1000", "Brand": "dominicks"}),
    ("{Store}/{Brand}/*.csv", "1000/dominicks/part-0.parquet", None),
    ("{Store}/{Brand}/*.csv", "1000/part-0.csv", None),
    ("{Store}/{Brand}/*.csv", "1000/a/b/part-0.csv", None),  # {Name} and * stop at '/'
    ("sales_{Year}-{Month}.csv", "sales_2024-05.csv", {"Year": "2024", "Month": "05"}),
    ("{Store}/**/*.csv", "7/a/b/x.csv", {"Store": "7"}),
    ("{Store}/**/*.csv", "7/x.csv", {"Store": "7"}),
    ("{Id}/{Id}.json", "42/42.json", {"Id": "42"}),  # a name twice: the same value
    ("{Id}/{Id}.json", "42/43.json", None),
    ("data.v1/{Key}.csv", "dataXv1/a.csv", None),  # literal text is literal
    ("{Key}.csv", "a+b.csv", {"Key": "a+b"}),
])
def test_format_values(partition_format: str, path: str, expected: dict[str, str] | None
                       ) -> None:
    assert format_values(path, format_regex(partition_format)) == expected


@pytest.mark.parametrize(("path", "keys", "expected"), [
    ("1000/dominicks/part.csv", ["Store", "Brand"], {"Store": "1000", "Brand": "dominicks"}),
    ("1000/dominicks/x/part.csv", ["Store", "Brand"], {"Store": "1000", "Brand": "dominicks"}),
    ("1000/part.csv", ["Store", "Brand"], {}),  # fewer folder levels than keys
    ("part.csv", ["Store"], {}),
    ("Store=1000/dominicks/part.csv", ["Store", "Brand"], {}),  # hive folders are not values
])
def test_positional_values(path: str, keys: list[str], expected: dict[str, str]) -> None:
    assert positional_values(path, keys) == expected


@pytest.mark.parametrize(("keys", "columns", "expected"), [
    (["stor"], ["store", "units"], {"stor": "store"}),
    (["STORE"], ["store"], {"STORE": "store"}),
    (["store"], ["store"], {}),
    (["region"], ["store", "units"], {}),
])
def test_misspelt_columns(keys: list[str], columns: list[str], expected: dict[str, str]) -> None:
    assert misspelt_columns(keys, columns) == expected


@pytest.mark.parametrize(("path", "keys", "partition_format", "columns", "expected"), [
    # hive folders name their keys; values typed as the column would be
    ("Store=12/Brand=x/p.csv", ["Store", "Brand"], None, [], {"Store": 12, "Brand": "x"}),
    ("Store=12/p.csv", ["Store", "Brand"], None, ["Brand"], {"Store": 12}),
    # value-only folders, when no key is a column or hive folder
    ("1000/dominicks/p.csv", ["Store", "Brand"], None, ["units"],
     {"Store": 1000, "Brand": "dominicks"}),
    ("1000/dominicks/p.csv", ["Store", "Brand"], None, ["Store", "units"], {}),  # a column
    ("2024/p.csv", ["stor"], None, ["store", "units"], {}),  # a misspelt column: no guess
    ("Store=1/dominicks/p.csv", ["Store", "Brand"], None, [], {"Store": 1}),
    # partitionFormat gives exactly what it names
    ("1000/dominicks/p.csv", ["Brand", "Store"], "{Store}/{Brand}/*.csv", ["Store"],
     {"Brand": "dominicks", "Store": 1000}),
    ("1000/p.csv", ["Store", "Brand"], "{Store}/*.csv", [], {"Store": 1000}),
])
def test_path_key_values(path: str, keys: list[str], partition_format: str | None,
                         columns: list[str], expected: dict[str, Any]) -> None:
    regex = format_regex(partition_format) if partition_format else None
    assert path_key_values(path, keys, regex, columns) == expected


def test_a_path_without_the_formats_shape_is_an_error() -> None:
    with pytest.raises(ValueError) as raised:
        path_key_values("x/p.csv", ["Store"], format_regex("{Store}/{Brand}/*.csv"))
    assert raised.value.args == ("x/p.csv",)


def entries(*paths: str) -> list[FileEntry]:
    return [FileEntry(path, 10 * (i + 1), 0) for i, path in enumerate(paths)]


def test_files_are_grouped_by_the_values_of_their_folders() -> None:
    """Azure's total-file-size example: one mini-batch per folder combination, numbers in
    numeric order before text, files in listing order."""
    listing = entries("10/a/x.txt", "9/a/y.txt", "10/a/z.txt", "10/b/w.txt", "north/a/v.txt")
    batches = plan_file_partitions(listing, ["Store", "Brand"], None, node_count=2)
    assert [(mb.id, mb.items, mb.table) for mb in batches] == [
        (0, ("9/a/y.txt",), TableSlice(rows=1, partition={"Store": 9, "Brand": "a"})),
        (1, ("10/a/x.txt", "10/a/z.txt"),
         TableSlice(rows=2, partition={"Store": 10, "Brand": "a"})),
        (2, ("10/b/w.txt",), TableSlice(rows=1, partition={"Store": 10, "Brand": "b"})),
        (3, ("north/a/v.txt",), TableSlice(rows=1, partition={"Store": "north", "Brand": "a"})),
    ]
    assert [mb.bytes for mb in batches] == [20, 40, 40, 50]
    assert [mb.item_count for mb in batches] == [1, 2, 1, 1]
    assert {mb.shard for mb in batches} == {0, 1}


def test_files_with_a_partition_format() -> None:
    listing = entries("x/1000/dominicks/a.csv", "x/1000/tropicana/b.csv", "x/2/dominicks/c.csv")
    batches = plan_file_partitions(listing, ["Brand"], "x/{Store}/{Brand}/*.csv", 1)
    assert [(mb.items, mb.table.partition if mb.table else None) for mb in batches] == [
        (("x/1000/dominicks/a.csv", "x/2/dominicks/c.csv"), {"Brand": "dominicks"}),
        (("x/1000/tropicana/b.csv",), {"Brand": "tropicana"}),
    ]


@pytest.mark.parametrize(("paths", "keys", "partition_format", "problem"), [
    (("1000/a.txt",), ["Store", "Brand"], None,
     "spec.input.partitionKeys: 1000/a.txt gives no value for Store, Brand: a files input "
     "takes its key values from folders (Store=1000/, partitionFormat {Store}/*, or one "
     "folder level per key, in key order)"),
    (("Store=1/a.txt",), ["Store", "Brand"], None,
     "spec.input.partitionKeys: Store=1/a.txt gives no value for Brand: a files input "
     "takes its key values from folders (Store=1000/, partitionFormat {Store}/*, or one "
     "folder level per key, in key order)"),
    (("1/a.txt", "b.txt"), ["Store"], "{Store}/*.txt",
     "spec.input.partitionFormat: b.txt does not have the shape {Store}/*.txt"),
])
def test_files_without_values_are_refused_by_name(
    paths: tuple[str, ...], keys: list[str], partition_format: str | None, problem: str
) -> None:
    with pytest.raises(SpecError) as raised:
        plan_file_partitions(entries(*paths), keys, partition_format, 1)
    assert raised.value.problems == [problem]
