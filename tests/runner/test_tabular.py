"""`prs run` over tabular input: real CSV, JSON Lines and Parquet files, real workers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.runner.conftest import StepDir

# Each run() records which files and key values its rows came from, then returns its rows.
SCRIPT = """
import json, os
def run(mini_batch, context):
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "calls")
    os.makedirs(folder, exist_ok=True)
    call = {"id": context.minibatch_index, "rows": len(mini_batch),
            "files": sorted(set(mini_batch["file"].astype(str))),
            "keys": context.partition_key_value}
    with open(os.path.join(folder, f"{context.minibatch_index}.json"), "w") as f:
        json.dump(call, f)
    return mini_batch[RETURN_COLUMNS]
"""


def tabular_step(root: Path, *, columns: tuple[str, ...] = ("file", "id"), script: str = SCRIPT,
                 **spec: Any) -> StepDir:
    (root / "src").mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(script).replace("RETURN_COLUMNS", repr(list(columns)))
    (root / "src" / "score.py").write_text(body)
    document = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "tabular-test"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                 "output": {"uri": "./out"}, "processCountPerNode": 2, **spec},
    }
    (root / "step.yaml").write_text(yaml.safe_dump(document))
    return StepDir(root)


def frame(file: str, rows: int, start: int) -> pd.DataFrame:
    texts = ["plain", "a, comma", 'a "quote"', "two\nlines", "x\n\ny", ""]
    return pd.DataFrame({
        "file": file,
        "id": range(start, start + rows),
        "store": [i % 3 for i in range(rows)],
        "text": [texts[i % len(texts)] for i in range(rows)],
        "value": [i * 0.5 for i in range(rows)],
    })


def write_inputs(root: Path, fmt: str, rows: tuple[int, ...]) -> pd.DataFrame:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    frames, start = [], 0
    for index, count in enumerate(rows):
        name = f"part{index}.{fmt}"
        part = frame(name, count, start)
        start += count
        frames.append(part)
        if fmt == "csv":
            part.to_csv(data / name, index=False)
        elif fmt == "jsonl":
            part.to_json(data / name, orient="records", lines=True)
        else:
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), data / name,
                           row_group_size=50)
    return pd.concat(frames, ignore_index=True)


def calls(step: StepDir) -> list[dict[str, Any]]:
    folder = step.root / "calls"
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")),
                  key=lambda c: c["id"])


def assert_succeeded(step: StepDir, args: tuple[str, ...] = ()) -> dict[str, Any]:
    result = step.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return step.job_result()


@pytest.mark.parametrize(
    ("fmt", "size"), [("csv", "4KB"), ("jsonl", "4KB"), ("parquet", "2KB")])
def test_every_row_once_in_order_and_no_mini_batch_crosses_a_file(
    tmp_path: Path, fmt: str, size: str
) -> None:
    expected = write_inputs(tmp_path, fmt, (700, 15, 400))
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data", "format": fmt},
                        miniBatchSize=size, appendRowFormat="csv")
    result = assert_succeeded(step)
    made = calls(step)
    assert len(made) > 3  # the large files were split
    assert all(len(c["files"]) == 1 for c in made)
    assert result["items"] == {"total": 1115, "succeeded": 1115, "failed": 0}
    output = pd.read_csv(step.out / "parallel_run_step.txt", keep_default_na=False)
    pd.testing.assert_frame_equal(output, expected[["file", "id"]])


def test_parquet_splits_by_row_groups(tmp_path: Path) -> None:
    write_inputs(tmp_path, "parquet", (500,))  # 10 row groups of 50 rows
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"},
                        miniBatchSize="1", outputAction="summary_only")
    assert_succeeded(step)
    assert [c["rows"] for c in calls(step)] == [50] * 10  # one row group is the smallest unit


def test_rows_sizing(tmp_path: Path) -> None:
    write_inputs(tmp_path, "csv", (250, 30))
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data", "glob": "*.csv"},
                        miniBatchSize="100rows", appendRowFormat="parquet")
    assert_succeeded(step)
    assert [c["rows"] for c in calls(step)] == [100, 100, 50, 30]
    assert [row["items"] for row in step.report_rows()] == ["100", "100", "50", "30"]
    output = pq.read_table(step.out / "parallel_run_step.txt").to_pandas()
    assert output["id"].tolist() == list(range(280))


def test_partition_keys_read_from_the_data(tmp_path: Path) -> None:
    expected = write_inputs(tmp_path, "csv", (90, 31))
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data",
                                         "partitionKeys": ["store"]},
                        columns=("store", "id"), appendRowFileName="scores.csv",
                        appendRowFormat="csv")
    assert_succeeded(step)
    made = calls(step)
    assert [c["keys"] for c in made] == [{"store": 0}, {"store": 1}, {"store": 2}]
    assert [c["files"] for c in made] == [["part0.csv", "part1.csv"]] * 3
    assert [c["rows"] for c in made] == [41, 40, 40]
    output = pd.read_csv(step.out / "scores.csv")
    assert sorted(output["id"]) == list(range(121))
    assert output["store"].tolist() == sorted(expected["store"])


def test_hive_partition_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = frame("f", 120, 0).drop(columns=["store"])
    for store in (3, 12):
        for brand in ("a", "b"):
            folder = data / f"store={store}" / f"brand={brand}"
            folder.mkdir(parents=True)
            for part in range(2):
                pq.write_table(pa.Table.from_pandas(expected.iloc[part * 60:(part + 1) * 60],
                                                    preserve_index=False),
                               folder / f"part{part}.parquet")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data",
                                         "partitionKeys": ["store", "brand"]},
                        columns=("store", "brand", "id"), appendRowFormat="text")
    assert_succeeded(step)
    made = calls(step)
    assert [c["keys"] for c in made] == [{"store": 3, "brand": "a"}, {"store": 3, "brand": "b"},
                                         {"store": 12, "brand": "a"}, {"store": 12, "brand": "b"}]
    assert all(c["rows"] == 120 for c in made)
    lines = step.output_lines()
    assert len(lines) == 480
    assert lines[0] == "3 a 0" and lines[-1] == "12 b 119"


def test_text_output_is_the_azure_format(tmp_path: Path) -> None:
    write_inputs(tmp_path, "jsonl", (40,))
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"},
                        miniBatchSize="10rows", columns=("id", "value"))
    assert_succeeded(step)
    assert step.output_lines() == [f"{i} {i * 0.5}" for i in range(40)]


def test_a_malformed_csv_row_fails_its_record_not_the_step(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text("file,id\nsales.csv,1\nsales.csv,2,extra\nsales.csv,3\n")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"})
    result = assert_succeeded(step)
    assert result["items"] == {"total": 3, "succeeded": 2, "failed": 1}
    assert step.output_lines() == ["sales.csv 1", "sales.csv 3"]
    error = step.report_rows()[0]["error"]
    # The parser's words, and where: the file and the byte range of the mini-batch.
    assert error.startswith("CSVParseError: CSV parse error in sales.csv bytes 8-50: ")
    assert "Expected 2 columns, got 3: sales.csv,2,extra" in error


def test_a_parquet_schema_change_fails_the_merge_naming_both_mini_batches(tmp_path: Path
                                                                          ) -> None:
    write_inputs(tmp_path, "csv", (20, 20))
    script = """
    def run(mini_batch, context):
        ids = mini_batch["id"]
        return (ids * 1.5 if context.minibatch_index == 1 else ids).to_frame()
    """
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"}, script=script,
                        appendRowFormat="parquet")
    result = step.run()
    assert result.returncode == 1
    outcome = step.job_result()
    assert outcome["reason"] == "AppendRowSchemaMismatch"
    assert "mini-batch 1" in outcome["message"] and "mini-batch 0" in outcome["message"]
    assert not (step.out / "parallel_run_step.txt").exists()


def test_format_is_guessed_or_asked_for(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "table.dat").write_text("a\n1\n")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"})
    result = step.run()
    assert result.returncode == 2
    assert "spec.input.format" in result.stderr


def test_one_file_as_the_input(tmp_path: Path) -> None:
    expected = write_inputs(tmp_path, "csv", (300, 50))
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data/part0.csv"},
                        miniBatchSize="2KB", appendRowFormat="csv")
    assert_succeeded(step)
    output = pd.read_csv(step.out / "parallel_run_step.txt", keep_default_na=False)
    pd.testing.assert_frame_equal(output, expected[["file", "id"]].iloc[:300])


def test_a_crashed_worker_writes_no_row_twice(tmp_path: Path) -> None:
    expected = write_inputs(tmp_path, "parquet", (600,))
    script = """
    import os
    def run(mini_batch, context):
        marker = os.path.join(context.output_dir, "crashed")
        if context.minibatch_index == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)  # the worker dies mid-run; its mini-batch is tried again
        return mini_batch[["id", "text"]]
    """
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"}, script=script,
                        miniBatchSize="100rows", appendRowFormat="parquet")
    result = assert_succeeded(step)
    assert (step.out / "crashed").exists()
    assert result["items"]["succeeded"] == 600
    assert [row["tries"] for row in step.report_rows()][3] == "2"
    output = pq.read_table(step.out / "parallel_run_step.txt").to_pandas()
    pd.testing.assert_frame_equal(output, expected[["id", "text"]])


def test_dates_arrive_as_datetime64(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "days.csv").write_text("day,n\n2024-01-31,1\n2024-02-29,2\n")
    script = """
    def run(mini_batch):
        return [f"{mini_batch['day'].dtype.kind} {day:%j}" for day in mini_batch["day"]]
    """
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"}, script=script)
    assert_succeeded(step)
    assert step.output_lines() == ["M 031", "M 060"]


def test_an_unclosed_quote_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"sales.csv,{i}" for i in range(1, 2001)]
    rows[1000] = 'sales.csv,"1001'  # a quote that never closes: 999 rows would vanish
    (data / "sales.csv").write_text("file,id\n" + "\n".join(rows) + "\n")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"},
                        miniBatchSize="100rows")
    result = step.run()
    assert result.returncode == 2
    offset = len("file,id\n") + sum(len(r) + 1 for r in rows[:1000])
    assert result.stderr.strip() == (
        f"prs run: invalid ParallelRunStep:\n  - spec.input.uri: sales.csv: the record at "
        f"line 1002 (byte {offset}) opens a quote that never closes, so every row after it "
        'would be lost; fix the file (a stray " in an unquoted field?)')
    assert not (step.out / "parallel_run_step.txt").exists()


def test_a_json_line_of_spaces_is_not_an_item(tmp_path: Path) -> None:
    """pyarrow skips it; planned as an item, run() was charged a failed one, and a step
    with errorThreshold 0 failed."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.jsonl").write_text('{"id": 1}\n \t \n{"id": 2}\n   \n')
    script = """
    def run(mini_batch):
        return [str(i) for i in mini_batch["id"]]
    """
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data", "format": "jsonl"},
                        script=script, errorThreshold=0, miniBatchSize="1rows")
    result = assert_succeeded(step)
    assert result["items"] == {"total": 2, "succeeded": 2, "failed": 0}
    assert step.output_lines() == ["1", "2"]


def test_a_quote_inside_an_unquoted_field_is_an_error_naming_the_file_and_line(
        tmp_path: Path) -> None:
    """Inch marks beside a quoted description over two lines: pyarrow reads the marks as
    text and the description whole. Counted as quotes they made the line break inside the
    description a record end: a mini-batch cut there, the value cut short, Succeeded."""
    rows = [f"{i},{i} cm,plain" for i in range(1, 41)]
    rows[20] = '21,12" pizza,"Large\nfamily size",14" box'
    said = refused_csv(tmp_path, "menu.csv", "id,size,note\n" + "\n".join(rows) + "\n", "1rows")
    offset = len("id,size,note\n") + sum(len(r) + 1 for r in rows[:20]) + len("21,12")
    assert said == (
        f"menu.csv: line 22 (byte {offset}) has a quote character inside a field that does "
        'not start with one (5" disk), so where its records end is not sure: quote the whole '
        'field and double the quotes in it ("5"" disk"), or remove the quote')


def refused_csv(root: Path, name: str, text: str, size: str) -> str:
    """What `prs run` says of the CSV file NAME holding TEXT, read in SIZE mini-batches, when
    it refuses it (exit 2, no output written): the line after the field's name."""
    data = root / "data"
    data.mkdir()
    (data / name).write_text(text, newline="")
    step = tabular_step(root, input={"type": "tabular", "uri": "./data"}, miniBatchSize=size)
    result = step.run()
    assert result.returncode == 2, result.stdout
    assert not (step.out / "parallel_run_step.txt").exists()
    prefix = "prs run: invalid ParallelRunStep:\n  - spec.input.uri: "
    assert result.stderr.startswith(prefix), result.stderr
    return result.stderr.strip().removeprefix(prefix)


@pytest.mark.parametrize("line_ends", ["\r", "\n\r"], ids=["cr-only", "lf-cr"])
def test_carriage_returns_alone_are_an_error_naming_the_file_and_byte(
        tmp_path: Path, line_ends: str) -> None:
    """CR-only line ends (old Mac files): pyarrow ends a record at each, the cuts did not,
    and the whole file was planned as no mini-batch at all: Succeeded with 0 rows."""
    rows = ["file,id", *(f"sales.csv,{i}" for i in range(1, 41))]
    said = refused_csv(tmp_path, "sales.csv", line_ends.join(rows) + line_ends, "10rows")
    offset = len(rows[0]) + (len(line_ends) - 1)
    line = 1 if line_ends == "\r" else 2
    assert said == (
        f"sales.csv: line {line} holds a carriage return with no line feed after it (byte "
        f"{offset}: old Mac line ends?); records are cut at line feeds, so rows would be lost: "
        "convert the file to LF or CRLF line ends (for example: tr '\\r' '\\n'), or quote "
        "the field that holds it")


def test_a_carriage_return_in_a_quoted_field_is_a_value(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.csv").write_bytes(b'id,note\r\n1,"a\rb"\r\n2,c\r\n')
    script = """
    def run(mini_batch):
        return [repr(note) for note in mini_batch["note"]]
    """
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"}, script=script)
    assert_succeeded(step)
    assert step.output_lines() == ["'a\\rb'", "'c'"]


def test_a_malformed_row_error_is_capped_in_the_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    long_row = "sales.csv,2," + "x" * 100_000
    (data / "sales.csv").write_text(f"file,id\nsales.csv,1\n{long_row}\nsales.csv,3\n")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"})
    assert_succeeded(step)
    error = step.report_rows()[0]["error"]
    assert len(error) < 3000
    assert error.endswith("... (100,012 characters)")


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
assert done.returncode == 0, done.stdout + done.stderr
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def plan_peak_rss_mib(step: StepDir) -> float:
    """The peak memory of `prs plan` on STEP, measured by a parent that only waits for it."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "prs_runner.commands.prs_cli", "plan", str(step.step)]
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], capture_output=True,
                          text=True, timeout=300, check=True)
    return int(done.stdout) / 1024


@pytest.mark.parametrize("line", [b"1\n", b"\n"])
def test_planning_a_file_of_short_lines_does_not_hold_an_offset_per_line(
        tmp_path: Path, line: bytes) -> None:
    """The scan holds an offset (and its counts) per line of what it is given: given 16 MB
    blocks, a 64 MB CSV of two-byte lines took 560 MB (900 MB of blank lines) to plan, past
    the plan pod's memory. It is now given 1 MB at a time."""
    small, large = tmp_path / "small", tmp_path / "large"
    for root, lines in ((small, 10), (large, (64 << 20) // len(line))):
        (root / "data").mkdir(parents=True)
        (root / "data" / "t.csv").write_bytes(b"h\n1\n" + line * lines)
    baseline = plan_peak_rss_mib(tabular_step(small, input={"type": "tabular", "uri": "./data"},
                                              miniBatchSize="1MB"))
    peak = plan_peak_rss_mib(tabular_step(large, input={"type": "tabular", "uri": "./data"},
                                          miniBatchSize="1MB"))
    assert peak - baseline < 150, (baseline, peak)
