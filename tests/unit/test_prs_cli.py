"""`prs`: its own commands, and the ones other packages register (the operator's submit)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest

from prs_runner.commands.prs_cli import Terminated, main, parser, say_stopped, unavailable


def test_submit_comes_from_the_operators_entry_point() -> None:
    args = parser().parse_args(["submit", "step.yaml", "-n", "team", "--wait"])
    assert (args.command, args.namespace, args.wait, args.timeout) == (
        "submit", "team", True, 3600.0)
    assert args.handler.__module__ == "prs_operator.submit_command"


def test_a_command_that_cannot_load_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    handler = unavailable("submit", ImportError("No module named 'kubernetes'"))
    assert handler(argparse.Namespace()) == 2
    assert capsys.readouterr().err.strip() == (
        "prs submit is not available: No module named 'kubernetes' "
        "(install it with: pip install 'parallelrunstep[operator]')")


def test_a_built_in_command_is_parsed_without_loading_the_plugins() -> None:
    """Plugins are found through the installed packages' metadata (about 30 ms): `prs run`
    does not pay for them, `prs --help` and `prs submit` do."""
    from prs_runner.commands.prs_cli import BUILT_IN

    def commands(root: argparse.ArgumentParser) -> set[str]:
        return {action.dest for action in root._actions  # every subparser's choice
                if isinstance(action, argparse._SubParsersAction)
                for action in action._choices_actions}

    assert commands(parser(plugins=False)) == set(BUILT_IN)
    assert commands(parser()) == {*BUILT_IN, "submit", "status", "logs"}
    with patch("prs_runner.commands.prs_cli.register_plugins") as register:
        with pytest.raises(SystemExit):
            main(["run", "--help"])
        register.assert_not_called()
        with pytest.raises(SystemExit):
            main(["--help"])
        register.assert_called_once()


AZURE_JOB = """\
type: parallel
name: score_images
compute: azureml:cpu-cluster
inputs:
  images: {type: uri_folder, path: ./images}
outputs:
  scores: {type: uri_folder, path: ./scores}
input_data: ${{inputs.images}}
mini_batch_size: "10"
retry_settings: {max_retries: 1, timeout: 30}
task: {code: ./src, entry_script: score.py, append_row_to: "${{outputs.scores}}"}
"""


def test_convert_writes_a_step_that_validates(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from prs_runner.step.validation import load_step

    (tmp_path / "job.yml").write_text(AZURE_JOB)
    assert main(["convert", str(tmp_path / "job.yml")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "# compute: azureml:cpu-cluster" in out
    (tmp_path / "step.yaml").write_text(out)
    step = load_step(tmp_path / "step.yaml")
    assert (step.name, step.spec["runMaxTry"], step.spec["runInvocationTimeout"]) == (
        "score-images", 2, 30)
    assert main(["convert", str(tmp_path / "job.yml"), "-o", str(tmp_path / "o.yaml")]) == 0
    assert (tmp_path / "o.yaml").read_text() == out


def test_convert_names_what_the_step_still_needs(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.yml").write_text(AZURE_JOB.replace("./images", "azureml:images:3"))
    assert main(["convert", str(tmp_path / "job.yml")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "spec.input.uri: azureml://images:3" in err[0]


def test_convert_refuses_a_bad_file_in_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.yml").write_text("type: command\ncommand: python train.py\n")
    assert main(["convert", str(tmp_path / "job.yml")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"prs convert: {tmp_path / 'job.yml'}: not a parallel job")


def test_convert_never_writes_over_the_azure_file(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yml"
    job.write_text("type: parallel\n")
    assert main(["convert", str(job), "-o", str(tmp_path / "." / "job.yml")]) == 2
    assert job.read_text() == "type: parallel\n"
    assert capsys.readouterr().err == (f"prs convert: -o {tmp_path / '.' / 'job.yml'} is the "
                                       "Azure file itself; write the step to another file\n")


@pytest.mark.parametrize("link", [os.link, os.symlink])
def test_convert_never_writes_over_the_azure_file_through_a_link(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        link: Callable[[Path, Path], None]) -> None:
    job = tmp_path / "job.yml"
    job.write_text("type: parallel\n")
    link(job, tmp_path / "step.yaml")
    assert main(["convert", str(job), "-o", str(tmp_path / "step.yaml")]) == 2
    assert job.read_text() == "type: parallel\n"
    assert "is the Azure file itself" in capsys.readouterr().err


def test_convert_names_an_output_it_cannot_write(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.yml").write_text(AZURE_JOB)
    assert main(["convert", str(tmp_path / "job.yml"), "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"prs convert: cannot write -o {tmp_path}: Is a "
                                       "directory; give another file\n")


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("s3://bucket/out", "s3://bucket/out"), ("file:///tmp/o", "file:///tmp/o"),
    ("/abs/out", "/abs/out"), ("rel/out", "{cwd}/rel/out"), ("./o/../p", "{cwd}/p"),
])
def test_the_output_flag_is_relative_to_where_prs_runs(
        value: str | None, expected: str | None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prs_runner.commands.prs_cli import output_flag

    monkeypatch.chdir(tmp_path)
    want = expected.format(cwd=tmp_path) if expected else None
    assert output_flag(value) == want


@pytest.mark.parametrize("command", ["run", "plan"])
def test_output_takes_a_format_and_points_a_location_to_output_uri(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser(plugins=False).parse_args([command, "s.yaml", "-o", "json",
                                             "--output-uri", "o"])
    assert (args.output, args.output_uri) == ("json", "o")
    assert parser(plugins=False).parse_args([command, "s.yaml"]).output == "text"
    with pytest.raises(SystemExit):
        parser(plugins=False).parse_args([command, "s.yaml", "--output", "./out"])
    assert ("'./out' is not text or json (the output's location is --output-uri ./out)"
            in capsys.readouterr().err)


@pytest.mark.parametrize(("stop", "left", "said", "code"), [
    (KeyboardInterrupt(), "interrupted", "interrupted", 130),
    (Terminated(), "interrupted", "terminated (SIGTERM)", 143),
    (KeyboardInterrupt(), "interrupted: run `prs run` again to resume",
     "interrupted: run `prs run` again to resume", 130),
    (Terminated(), "interrupted: run `prs run` again to resume",
     "terminated (SIGTERM): run `prs run` again to resume", 143),
])
def test_a_stop_says_which_signal_and_what_it_left(
        stop: KeyboardInterrupt, left: str, said: str, code: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert say_stopped(stop, left) == code
    assert capsys.readouterr().err == said + "\n"
