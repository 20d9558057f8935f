"""Azure MLTable files as a tabular input: what they select and how they are read, and every
part this runtime cannot honour refused by name."""

from __future__ import annotations

import pytest

from prs_runner.planning.mltable import MLTABLE_FILE, parse_mltable
from prs_runner.step.spec import SpecError

CSV = "transformations:\n  - read_delimited:\n      delimiter: ','\n"


@pytest.mark.parametrize(("paths", "selected", "left_out"), [
    ("  - file: ./iris.csv\n", ["iris.csv"], ["iris.csv.bak", "a/iris.csv", MLTABLE_FILE]),
    ("  - pattern: ./*.csv\n", ["a.csv", "b.csv"], ["a/b.csv", "a.parquet", MLTABLE_FILE]),
    ("  - pattern: '**/*.csv'\n", ["a.csv", "x/y/b.csv"], ["x/b.parquet"]),
    ("  - folder: ./data\n", ["data/a.csv", "data/x/b.csv"], ["a.csv", "database/a.csv"]),
    ("  - folder: ./\n", ["a.csv", "x/b.csv"], [MLTABLE_FILE]),
    ("  - file: iris.csv\n  - file: extra.csv\n", ["iris.csv", "extra.csv"], ["other.csv"]),
    ("  - folder: data/\n", ["data/a.csv"], ["a.csv"]),
])
def test_paths_select_files(paths: str, selected: list[str], left_out: list[str]) -> None:
    table = parse_mltable(f"paths:\n{paths}{CSV}")
    assert [p for p in selected if table.selects(p)] == selected
    assert [p for p in left_out if table.selects(p)] == []


@pytest.mark.parametrize(("reader", "fmt"), [
    ("  - read_delimited:\n      delimiter: ','\n      header: all_files_same_headers\n", "csv"),
    ("  - read_delimited: {}\n", "csv"),
    ("  - read_delimited:\n      encoding: UTF8\n      support_multi_line: true\n", "csv"),
    ("  - read_parquet:\n      include_path_column: false\n", "parquet"),
    ("  - read_json_lines:\n      encoding: utf8\n", "jsonl"),
    ("  - read_parquet\n", "parquet"),
    ("  - read_delimited:\n", "csv"),
])
def test_the_reader_gives_the_format(reader: str, fmt: str) -> None:
    assert parse_mltable(f"paths:\n  - pattern: ./*\ntransformations:\n{reader}").format == fmt


WHERE = "spec.input.uri: MLTable"


@pytest.mark.parametrize(("text", "problems"), [
    ("paths: [", [f"{WHERE}: not valid YAML (while parsing a flow node)"]),
    ("- a\n- b\n", [f"{WHERE}: expected a mapping with paths and transformations"]),
    (f"paths: []\n{CSV}", [f"{WHERE}: paths must list file:, folder: or pattern: entries"]),
    (f"paths:\n  - glob: '*.csv'\n{CSV}",
     [f"{WHERE}: paths entry {{'glob': '*.csv'}}: give one of file:, folder:, pattern:"]),
    (f"paths:\n  - file: azureml://datastores/x/paths/a.csv\n{CSV}",
     [f"{WHERE}: paths file: azureml://datastores/x/paths/a.csv: only paths inside the "
      "MLTable's folder are read here; put the files next to it"]),
    (f"paths:\n  - a.csv\n  - file: x.csv\n    folder: y\n  - file: ok.csv\n{CSV}",
     [f"{WHERE}: paths entry 'a.csv': give one of file:, folder:, pattern:",
      f"{WHERE}: paths entry {{'file': 'x.csv', 'folder': 'y'}}: give one of file:, folder:, "
      "pattern:"]),
    (f"paths:\n  - file: /abs/a.csv\n  - file: ../b.csv\n{CSV}",
     [f"{WHERE}: paths file: /abs/a.csv: only paths inside the MLTable's folder are read "
      "here; put the files next to it",
      f"{WHERE}: paths file: ../b.csv: only paths inside the MLTable's folder are read "
      "here; put the files next to it"]),
    ("paths:\n  - file: a.csv\ntransformations:\n  - read_parquet: {}\n  - {}\n",
     [f"{WHERE}: transformations {{}} are not applied here; do them in run()"]),
    ("paths:\n  - file: a.csv\ntransformations:\n  - read_delimited:\n      quoting: true\n",
     [f"{WHERE}: read_delimited quoting: True is not supported here (supported: none)"]),
    (f"paths:\n  - file: /abs/a.csv\n{CSV}",
     [f"{WHERE}: paths file: /abs/a.csv: only paths inside the MLTable's folder are read "
      "here; put the files next to it"]),
    (f"paths:\n  - folder: ../up\n{CSV}",
     [f"{WHERE}: paths folder: ../up: only paths inside the MLTable's folder are read here; "
      "put the files next to it"]),
    ("paths:\n  - pattern: '[z-a].csv'\n" + CSV,
     [f"{WHERE}: paths pattern: '[z-a].csv' is not a valid glob (bad character range z-a "
      "at position 1)"]),
    ("paths:\n  - file: a.csv\n",
     [f"{WHERE}: transformations need one of read_delimited, read_parquet, read_json_lines"]),
    ("paths:\n  - file: a.csv\ntransformations:\n  - read_parquet: {}\n  - take: 5\n"
     "  - keep_columns: [a]\n",
     [f"{WHERE}: transformations take, keep_columns are not applied here; do them in run()"]),
    ("paths:\n  - file: a.csv\ntransformations:\n  - read_parquet: {}\n  - read_delimited: {}\n",
     [f"{WHERE}: transformations need one of read_delimited, read_parquet, read_json_lines"]),
    ("paths:\n  - file: a.csv\ntransformations:\n  - read_delimited:\n      delimiter: \"\\t\"\n"
     "      header: no_header\n",
     [f"{WHERE}: read_delimited delimiter: '\\t' is not supported here (supported: ',')",
      f"{WHERE}: read_delimited header: 'no_header' is not supported here (supported: "
      "'all_files_same_headers', 'from_first_file', 'all_files_different_headers')"]),
])
def test_what_cannot_be_honoured_is_refused(text: str, problems: list[str]) -> None:
    with pytest.raises(SpecError) as raised:
        parse_mltable(text)
    assert raised.value.problems == problems
