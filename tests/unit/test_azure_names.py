"""The Azure names entry scripts import (docs/azure-names.md): served by a finder at the end
of sys.meta_path, never over a real package, and answering from the worker's environment."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prs_runner.azure_names import core, parallel_run
from prs_runner.azure_names.finder import ROOTS, AzureNamesFinder, NotProvidedError, install
from prs_runner.entry_script import LOGGER_NAME

DOCS = "docs/azure-names.md"


def drop_azure_modules() -> None:
    for name in [n for n in sys.modules if n.partition(".")[0] in ROOTS]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """Every test starts and ends with no Azure module imported and no finder installed."""
    meta_path = list(sys.meta_path)
    drop_azure_modules()
    yield
    sys.meta_path[:] = meta_path
    drop_azure_modules()
    core.Run._context = None
    logging.getLogger(core.METRICS_LOGGER).setLevel(logging.NOTSET)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """What execution/environment.py gives shard 3's process 7."""
    for name, value in {"PRS_SHARD_INDEX": "3", "PRS_PROCESS_INDEX": "7",
                        "PRS_OUTPUT_DIR": str(tmp_path / "out"),
                        "PRS_CODE_ROOT": str(tmp_path / "code"),
                        "PRS_SIDE_INPUT_NAMES": ""}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    return tmp_path


def write_package(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


@pytest.mark.parametrize(("module", "name", "expected"), [
    ("azureml_user.parallel_run", "EntryScript", parallel_run.EntryScript),
    ("azureml.core", "Model", core.Model),
    ("azureml.core", "Run", core.Run),
    ("azureml.core.model", "Model", core.Model),
    ("azureml.core.run", "Run", core.Run),
])
def test_the_finder_serves_the_azure_names_when_nothing_real_exists(
        module: str, name: str, expected: type) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(module)
    install()
    assert getattr(importlib.import_module(module), name) is expected


def test_the_finder_is_appended_once_after_the_standard_finders() -> None:
    before = len(sys.meta_path)
    install()
    install()
    assert len(sys.meta_path) == before + 1
    assert isinstance(sys.meta_path[-1], AzureNamesFinder)


def test_served_submodules_are_reachable_as_attributes_as_in_azures_package() -> None:
    install()
    azureml = importlib.import_module("azureml")
    assert azureml.core.model.Model is core.Model
    assert azureml.core.run.Run is core.Run
    assert importlib.import_module("azureml_user").parallel_run.EntryScript is (
        parallel_run.EntryScript)


@pytest.mark.parametrize(("files", "module", "marker"), [
    ({"azureml/__init__.py": "", "azureml/core/__init__.py": "marker = 'real core'\n"},
     "azureml.core", "real core"),
    ({"azureml_user/__init__.py": "", "azureml_user/parallel_run.py": "marker = 'real pr'\n"},
     "azureml_user.parallel_run", "real pr"),
])
def test_a_real_installed_package_wins_over_the_shim(
        files: dict[str, str], module: str, marker: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_package(tmp_path, files)
    monkeypatch.syspath_prepend(str(tmp_path))
    install()
    real = importlib.import_module(module)
    assert real.marker == marker
    assert not hasattr(real, "Model") and not hasattr(real, "EntryScript")


def test_a_real_azureml_namespace_without_core_gets_the_shims_core(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """azureml-dataprep alone installs a namespace `azureml` with no `core`: nothing real is
    shadowed by serving azureml.core, and the real module still imports."""
    write_package(tmp_path, {"azureml/dataprep/__init__.py": "marker = 'dataprep'\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    install()
    assert importlib.import_module("azureml.dataprep").marker == "dataprep"
    assert importlib.import_module("azureml.core").Model is core.Model
    assert str(tmp_path / "azureml") in list(importlib.import_module("azureml").__path__)


@pytest.mark.parametrize(("statement", "error", "name"), [
    ("from azureml.core import Workspace", ImportError, "azureml.core.Workspace"),
    ("import azureml.train.automl", ImportError, "azureml.train"),
    ("from azureml.core.conda_dependencies import CondaDependencies", ImportError,
     "azureml.core.conda_dependencies"),
    ("import azureml.core; azureml.core.Dataset", AttributeError, "azureml.core.Dataset"),
    ("from azureml.core import Model; Model.register", AttributeError,
     "azureml.core.Model.register"),
    ("from azureml.core import Run; Run.get_context().log_image", AttributeError,
     "azureml.core.Run.log_image"),
    ("from azureml_user.parallel_run import Other", ImportError,
     "azureml_user.parallel_run.Other"),
])
def test_what_is_not_provided_says_what_is_and_where_it_is_documented(
        statement: str, error: type[Exception], name: str) -> None:
    install()
    with pytest.raises(error) as raised:
        exec(statement, {})
    message = str(raised.value)
    assert message.startswith(f"{name} is not provided")
    assert "EntryScript" in message and "get_model_path" in message and DOCS in message


def test_a_missing_module_is_an_import_error_whose_message_survives_from_imports() -> None:
    """A ModuleNotFoundError raised for `azureml.core.Workspace` would be swallowed by
    `from azureml.core import Workspace` and replaced by a bare "cannot import name"."""
    install()
    with pytest.raises(NotProvidedError) as raised:
        exec("from azureml.core import Workspace", {})
    assert not isinstance(raised.value, ModuleNotFoundError)


@pytest.mark.parametrize(("index", "name"), [("0", "process000"), ("7", "process007"),
                                             ("12", "process012"), ("123", "process123")])
def test_process_name_is_azures_processNNN(
        index: str, name: str, worker_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRS_PROCESS_INDEX", index)
    entry = parallel_run.EntryScript()
    assert (entry.process_name, entry.agent_name) == (name, name)


def test_entry_script_answers_from_the_workers_environment(worker_env: Path) -> None:
    entry = parallel_run.EntryScript()
    assert entry.node_id == 3 and isinstance(entry.node_id, int)
    assert entry.output_dir == str(worker_env / "out")
    assert entry.working_dir == str(worker_env / "code")
    assert entry.logger is logging.getLogger(LOGGER_NAME)
    log_dir = Path(entry.log_dir)
    assert log_dir == worker_env / "out" / "logs" / "user" / "entry_script_log" / "3"
    assert log_dir.is_dir()


def side_input(monkeypatch: pytest.MonkeyPatch, name: str, path: Path) -> None:
    var = "PRS_SIDE_INPUT_" + name.upper()
    monkeypatch.setenv("PRS_SIDE_INPUT_NAMES", f"{name}={var}")
    monkeypatch.setenv(var, str(path))


def test_get_model_path_is_the_side_input_named_like_the_model(
        worker_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    side_input(monkeypatch, "mymodel", worker_env / "models" / "m1")
    (worker_env / "azml" / "mymodel").mkdir(parents=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(worker_env / "azml"))
    assert core.Model.get_model_path("mymodel") == str(worker_env / "models" / "m1")


@pytest.mark.parametrize(("folders", "version", "expected"), [
    (["mymodel"], None, "mymodel"),
    (["mymodel/2"], 2, "mymodel/2"),
    (["mymodel"], 2, "mymodel"),  # no version folder: the model's folder
])
def test_get_model_path_falls_back_to_azureml_model_dir(
        folders: list[str], version: int | None, expected: str, worker_env: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in folders:
        (worker_env / "azml" / folder).mkdir(parents=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(worker_env / "azml"))
    found = core.Model.get_model_path("mymodel", version=version)
    assert found == str(worker_env / "azml" / expected)


@pytest.mark.parametrize("model_dir", [None, "azml"])
def test_a_missing_model_is_one_line_naming_it_the_side_inputs_and_what_to_set(
        model_dir: str | None, worker_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    side_input(monkeypatch, "labels", worker_env / "labels")
    if model_dir:
        monkeypatch.setenv("AZUREML_MODEL_DIR", str(worker_env / model_dir))
    with pytest.raises(FileNotFoundError) as raised:
        core.Model.get_model_path("mymodel")
    message = str(raised.value)
    assert "\n" not in message
    assert "'mymodel'" in message and "side inputs: labels" in message
    assert "spec.sideInputs" in message and "AZUREML_MODEL_DIR" in message
    assert (str(worker_env / "azml" / "mymodel") in message) == bool(model_dir)


@pytest.mark.parametrize(("call", "key", "value", "description"), [
    (lambda run: run.log("accuracy", 0.5, "on the test set"), "metric", 0.5, "on the test set"),
    (lambda run: run.log("loss", 1.5, step=4), "metric", {"step": 4, "value": 1.5}, ""),
    (lambda run: run.log_list("scores", (1, 2)), "metric", [1, 2], ""),
    (lambda run: run.log_row("row", "one row", a=1, b="x"), "metric", {"a": 1, "b": "x"},
     "one row"),
    (lambda run: run.log_table("table", {"a": [1, 2]}), "metric", {"a": [1, 2]}, ""),
    (lambda run: run.tag("mode", "batch"), "tag", "batch", ""),
])
def test_run_writes_one_json_line_per_call_to_the_metrics_logger(
        call: Any, key: str, value: Any, description: str, worker_env: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # loggingLevel WARNING: metrics are written still
    try:
        call(core.Run.get_context())
    finally:
        root.setLevel(level)
    records = [r for r in caplog.records if r.name == core.METRICS_LOGGER]
    assert len(records) == 1
    line = json.loads(records[0].getMessage())
    assert line == {key: line[key], "value": value, "description": description,
                    "shard": 3, "process": 7}
    assert isinstance(line[key], str)


def test_numpy_values_are_written_as_numbers(
        worker_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    import numpy

    core.Run.get_context().log_row("row", a=numpy.float32(0.25), b=numpy.arange(3))
    line = json.loads(caplog.records[-1].getMessage())
    assert line["value"] == {"a": 0.25, "b": [0, 1, 2]}


def refuse(constant: str) -> None:
    raise ValueError(f"not strict JSON: {constant}")


def test_values_json_cannot_hold_are_written_as_text(
        worker_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    import numpy

    core.Run.get_context().log("t", {"a": [1, float("nan")], "b": numpy.float64("inf"),
                                     "c": (2, None, True), 3: {1, 2}})
    line = json.loads(caplog.records[-1].getMessage(), parse_constant=refuse)
    assert line["value"] == {"a": [1, "nan"], "b": "inf", "c": [2, None, True],
                             "3": "{1, 2}"}


def test_get_context_is_one_offline_run_per_worker() -> None:
    run = core.Run.get_context()
    assert core.Run.get_context(allow_offline=False) is run
    assert (run.id, run.experiment) == ("OfflineRun", None)
    run.set_tags({"a": "1", "b": None})
    assert run.get_tags() == {"a": "1", "b": None}
