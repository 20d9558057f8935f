"""What cannot be listed is an error naming it, never a silently smaller input; an output
that would be read back as input is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.runner.conftest import MakeStep

ECHO = """
import os
def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""

def test_a_dangling_symlink_in_the_input_is_named(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=6)
    (step.root / "data/broken.txt").symlink_to(step.root / "data/missing.txt")
    (step.root / "data/loop.txt").symlink_to(step.root / "data/loop.txt")
    result = step.run()
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith(f"prs run: invalid ParallelRunStep:\n  - spec.input.uri: cannot "
                              f"list {step.root / 'data'}: 'broken.txt': No such file")
    assert message.count("(a dangling or looping link?)") == 2
    assert "'loop.txt': Too many levels of symbolic links" in message
    assert message.endswith("fix these entries or narrow the glob")
    assert not step.out.exists()


def test_the_files_of_a_linked_sub_folder_are_run(make_step: MakeStep) -> None:
    """A folder reached through a link was skipped without a word: Succeeded without its
    files. It is listed as `find -L` lists it, under the link's path."""
    step = make_step(ECHO, files=2, input={"type": "files", "uri": "./data",
                                           "glob": "**/*.txt"})
    elsewhere = step.root / "elsewhere"
    (elsewhere / "deeper").mkdir(parents=True)
    for name in ("e1.txt", "deeper/e2.txt"):
        (elsewhere / name).write_text(name)
    (step.root / "data/more").symlink_to("../elsewhere")
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert sorted(step.output_lines()) == ["e1.txt", "e2.txt", "item0000.txt", "item0001.txt"]


@pytest.mark.parametrize(("link", "to", "output", "why"), [
    ("data/self", ".", "./out", "a link to a folder it is in (a loop)"),
    ("data/a/up", "../..", "./out", "a link to a folder it is in (a loop)"),
    ("data/results", "../out", "./out", "a link into {out}, the step's output"),
    ("data/runs", "../runs", "./runs/out", "a link into {out}, the step's output"),
])
def test_a_linked_folder_that_loops_or_leads_to_the_output_is_named(
        make_step: MakeStep, link: str, to: str, output: str, why: str) -> None:
    step = make_step(ECHO, files=2, output={"uri": output}, input={
        "type": "files", "uri": "./data", "glob": "*.txt"})  # the glob cannot leave it out
    out = step.root / output
    out.mkdir(parents=True)
    (step.root / link).parent.mkdir(exist_ok=True)
    (step.root / link).symlink_to(to)
    result = step.run()
    assert result.returncode == 2
    shown = why.format(out=os.path.realpath(out))
    assert f"'{link.removeprefix('data/')}': {shown}" in result.stderr, result.stderr
    assert not (out / "_prs").exists()


def test_a_bad_entry_the_glob_leaves_out_does_not_matter(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=6, input={"type": "files", "uri": "./data", "glob": "*.txt"})
    (step.root / "data/broken.lnk").symlink_to(step.root / "data/missing")
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert len(step.output_lines()) == 6


def test_terminal_escapes_and_non_utf8_names_are_shown_escaped(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=2)
    data = os.fsencode(step.root / "data")
    with open(os.path.join(data, b"bad\xff.txt"), "w") as stream:
        stream.write("x\n")
    (step.root / "data/evil\x1b[2J.txt").symlink_to(step.root / "nowhere")
    result = step.run()
    assert result.returncode == 2
    assert "\x1b" not in result.stderr
    assert "'evil\\x1b[2J.txt'" in result.stderr
    assert "'bad\\udcff.txt': its name is not UTF-8; rename it" in result.stderr


def test_an_unreadable_sub_folder_is_named_not_skipped(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=4)
    locked = step.root / "data/locked"
    locked.mkdir()
    (locked / "item.txt").write_text("1\n")
    locked.chmod(0)
    try:
        # As root, only without the capabilities that bypass file permissions does a mode
        # of 0 keep a folder unreadable (the tests run as root in CI).
        result = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable,
             "-m", "prs_runner.commands.prs_cli", "run", str(step.step)],
            capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'locked': cannot read this folder (Permission denied)" in result.stderr
    assert not (step.out / "parallel_run_step.txt").exists()


def test_a_missing_input_names_the_field(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=1, input={"type": "files", "uri": "./nowhere"})
    result = step.run()
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"spec.input.uri: {step.root / 'nowhere'} does not exist")


@pytest.mark.parametrize("spelling", [
    "file://{root}/out/x/../_prs", "file://{root}/to-prs", "./to-prs", "file://{root}/to-out/_prs",
])
def test_the_outputs_own_folder_is_refused_as_input_however_it_is_spelt(
        make_step: MakeStep, spelling: str) -> None:
    """A file:// URI was compared as written: through a link or '..' the run read its own
    commit logs as input."""
    step = make_step(ECHO, files=2)
    assert step.run().returncode == 0
    (step.root / "to-prs").symlink_to("out/_prs")
    (step.root / "to-out").symlink_to("out")
    document = yaml.safe_load(step.step.read_text())
    document["spec"]["input"]["uri"] = spelling.format(root=step.root)
    step.step.write_text(yaml.safe_dump(document))
    result = step.run()
    assert result.returncode == 2, result.stdout
    assert (f"spec.input.uri: {step.root}/out/_prs is what a run writes in spec.output.uri "
            f"({step.root}/out)") in result.stderr


def test_a_link_to_a_file_of_the_output_is_named(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=2)
    assert step.run().returncode == 0
    (step.root / "data/prev.txt").symlink_to("../out/parallel_run_step.txt")
    result = step.run("--fresh")
    assert result.returncode == 2
    assert "'prev.txt': a link to a file in the step's output" in result.stderr


@pytest.mark.parametrize(("code", "message"), [
    ({"entryScript": "scor.py", "sourceDirectory": "./src"},
     "spec.code.entryScript: scor.py is not in spec.code.sourceDirectory ({root}/src)"),
    ({"entryScript": "score.py", "sourceDirectory": "./scr"},
     "spec.code.sourceDirectory: {root}/scr is not a folder"),
])
def test_a_missing_entry_script_is_one_line_before_anything_runs(
        make_step: MakeStep, code: dict[str, str], message: str) -> None:
    """Every worker's init() failed on it, after the input was planned into the output."""
    step = make_step(ECHO, files=2, code=code)
    result = step.run()
    assert result.returncode == 2
    assert result.stderr.strip() == "prs run: invalid ParallelRunStep:\n  - " + message.format(
        root=step.root)
    assert not step.out.exists()


@pytest.mark.parametrize(("output", "field"), [
    ("./data/out", "spec.input.uri"),
    ("./data", "spec.input.uri"),
    ("./src", "spec.code.sourceDirectory"),
])
def test_an_output_inside_the_input_or_the_code_is_refused(
    make_step: MakeStep, output: str, field: str
) -> None:
    step = make_step(ECHO, files=3, output={"uri": output})
    result = step.run()
    assert result.returncode == 2
    resolved = (step.root / output).resolve()
    assert f"spec.output.uri: {resolved} is inside {field}" in result.stderr
    assert sorted(p.name for p in (step.root / "data").iterdir()) == [
        "item0000.txt", "item0001.txt", "item0002.txt"]
    assert not (resolved / "_prs").exists()


@pytest.mark.parametrize(("content", "why"), [
    (b"", "Parquet file size is 0 bytes"),
    (b"not parquet at all", "Parquet magic bytes not found in footer"),
])
def test_an_unreadable_parquet_file_is_named(make_step: MakeStep, content: bytes,
                                             why: str) -> None:
    step = make_step("def run(df):\n    return df\n", files=0,
                     input={"type": "tabular", "uri": "./data", "format": "parquet"})
    (step.root / "data/broken.parquet").write_bytes(content)
    result = step.run()
    assert result.returncode == 2
    assert result.stderr.startswith(
        "prs run: invalid ParallelRunStep:\n  - spec.input.uri: broken.parquet: not a "
        f"readable file ({why}")
    assert "Traceback" not in result.stderr


def test_an_output_path_that_is_a_file_is_one_line(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=2)
    step.out.write_text("a file where the output folder goes\n")
    result = step.run()
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"prs run: {step.out}/_prs: Not a directory; a file is where a folder must be")
    assert step.out.read_text() == "a file where the output folder goes\n"


def test_a_reader_that_leaves_early_gets_no_traceback(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=2)
    command = f"{sys.executable} -m prs_runner.commands.prs_cli run {step.step} | true"
    result = subprocess.run(["bash", "-c", f"{command}; echo ${{PIPESTATUS[0]}} >&2"],
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "1"  # the summary could not be written
    assert len(step.output_lines()) == 2  # the run itself completed
