"""Serves the Azure names to entry scripts. The finder is appended to the END of
sys.meta_path, so it is asked only after the standard finders found nothing: a real
installed `azureml.core` or `azureml_user` always wins, and the shim costs nothing to a
script that does not import these names.

A real `azureml` namespace package without `azureml.core` (azureml-dataprep, azureml-mlflow
installed alone) gets the shim's `azureml.core`: nothing real is shadowed, the real
`azureml.*` modules still import from their own folders."""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from prs_runner.azure_names import not_provided

ROOTS = ("azureml", "azureml_user")


@dataclass(frozen=True)
class Served:
    source: str = ""  # the runner module holding the names
    names: tuple[str, ...] = ()


CORE = "prs_runner.azure_names.core"
SERVED = {
    "azureml": Served(),
    "azureml.core": Served(CORE, ("Model", "Run")),
    "azureml.core.model": Served(CORE, ("Model",)),
    "azureml.core.run": Served(CORE, ("Run",)),
    "azureml_user": Served(),
    "azureml_user.parallel_run": Served("prs_runner.azure_names.parallel_run",
                                        ("EntryScript",)),
}


def module_getattr(module_name: str) -> Any:
    """A served module's `__getattr__`: a served submodule not imported yet is imported
    (`import azureml` then `azureml.core`), an unknown name says what is provided."""

    def getattr_(name: str) -> Any:
        if f"{module_name}.{name}" in SERVED:
            return importlib.import_module(f"{module_name}.{name}")
        raise AttributeError(not_provided(f"{module_name}.{name}"))

    return getattr_


class ShimLoader(importlib.abc.Loader):
    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        served = SERVED.get(module.__name__)
        if served is None:  # an Azure name this runtime lacks: say so, not "No module"
            raise NotProvidedError(not_provided(module.__name__), name=module.__name__)
        if served.source:
            source = importlib.import_module(served.source)
            for name in served.names:
                setattr(module, name, getattr(source, name))
        vars(module).update(__all__=list(served.names),
                            __getattr__=module_getattr(module.__name__))


class NotProvidedError(ImportError):
    """An ImportError, not a ModuleNotFoundError: `from azureml.core import Workspace`
    would otherwise be reported as a bare "cannot import name"."""


class AzureNamesFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in ROOTS:
            return None
        # Every one a package: only then does `from M import NAME` ask M for NAME in a way
        # that lets the not-provided message through (importlib's _handle_fromlist).
        return ModuleSpec(fullname, ShimLoader(), origin="prs_runner.azure_names",
                          is_package=True)


def install() -> None:
    """Append the finder to sys.meta_path (once): after the standard finders."""
    if not any(isinstance(finder, AzureNamesFinder) for finder in sys.meta_path):
        sys.meta_path.append(AzureNamesFinder())
