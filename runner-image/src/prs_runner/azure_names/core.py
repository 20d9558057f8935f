"""The part of `azureml.core` entry scripts use at run time: `Model.get_model_path` and
`Run.get_context()` with its log methods. Whatever else Azure's classes have fails with an
AttributeError that names what is provided (docs/azure-names.md)."""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, ClassVar, NoReturn

from prs_runner.azure_names import not_provided
from prs_runner.entry_script import side_inputs_from_env

METRICS_LOGGER = "prs.metrics"
OFFLINE_RUN_ID = "OfflineRun"


class Partial(type):
    """Azure's classes have many more class attributes (Model.register, Run.list...): asked
    for one, say what this runtime has instead of a bare AttributeError."""

    def __getattr__(cls, name: str) -> NoReturn:
        raise AttributeError(not_provided(f"azureml.core.{cls.__name__}.{name}"))


class ModelNotFoundError(FileNotFoundError):
    """A model neither a side input nor under AZUREML_MODEL_DIR."""


class Model(metaclass=Partial):
    """Only `Model.get_model_path`: a model is a side input named like it (or a folder
    under AZUREML_MODEL_DIR); there is no workspace to register or download models from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(not_provided("azureml.core.Model(workspace, ...)"))

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None,
                       _workspace: Any = None) -> str:
        """The side input named MODEL_NAME; else $AZUREML_MODEL_DIR/MODEL_NAME/VERSION or
        $AZUREML_MODEL_DIR/MODEL_NAME, the first that exists. VERSION selects nothing
        among side inputs: a step has one side input per name."""
        side_inputs = side_inputs_from_env()
        if model_name in side_inputs:
            return side_inputs[model_name]
        base = os.environ.get("AZUREML_MODEL_DIR", "")
        candidates = [os.path.join(base, model_name)]
        if version is not None:
            candidates.insert(0, os.path.join(base, model_name, str(version)))
        for candidate in candidates if base else []:
            if os.path.exists(candidate):
                return candidate
        raise ModelNotFoundError(missing_model(model_name, sorted(side_inputs), base))


def missing_model(name: str, side_inputs: list[str], model_dir: str) -> str:
    known = ", ".join(side_inputs) or "none"
    looked = f"; {os.path.join(model_dir, name)} does not exist" if model_dir else ""
    return (f"model {name!r} not found: no side input is named {name!r} (side inputs: "
            f"{known}){looked}; add a side input named {name!r} to spec.sideInputs, or set "
            f"AZUREML_MODEL_DIR to a folder holding {name}/")


def json_value(value: Any) -> Any:
    """VALUE as strict JSON holds it: numpy scalars and arrays as plain numbers and lists,
    NaN and infinities as their text ("nan", "inf": JSON has no such numbers), containers
    element by element, anything else JSON cannot hold as its text."""
    for convert in ("tolist", "item"):
        if callable(getattr(value, convert, None)):
            return json_value(getattr(value, convert)())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value if value is None or isinstance(value, str | int | bool) else str(value)


class Run(metaclass=Partial):
    """The offline run Azure gives a script run outside a submitted run: metrics and tags
    are written, one JSON object per line, to the worker's log through the `prs.metrics`
    logger (with the metric, its value, shard and process); the merge gathers them into the
    run report's Metrics table (output/run_metrics.py). One run per step, so `id`
    is the same in every worker; there is no experiment or workspace (`experiment` is
    None)."""

    _context: ClassVar[Run | None] = None

    def __init__(self) -> None:
        self.id = os.environ.get("AZUREML_RUN_ID") or OFFLINE_RUN_ID
        self.experiment: Any = None
        self.tags: dict[str, str | None] = {}
        self.logger = logging.getLogger(METRICS_LOGGER)
        # Metrics are results, not chatter: written at loggingLevel WARNING too.
        self.logger.setLevel(logging.INFO)

    @classmethod
    def get_context(cls, allow_offline: bool = True, **_kwargs: Any) -> Run:
        """The step's run, the same object on every call in a worker. Whatever
        ALLOW_OFFLINE says: under this runtime the offline run is the step's run."""
        if cls._context is None:
            cls._context = cls()
        return cls._context

    def __getattr__(self, name: str) -> NoReturn:
        raise AttributeError(not_provided(f"azureml.core.Run.{name}"))

    def write(self, kind: str, name: str, value: Any, description: str | None) -> None:
        record = {
            kind: name, "value": value, "description": description or "",
            "shard": int(os.environ.get("PRS_SHARD_INDEX", "0")),
            "process": int(os.environ.get("PRS_PROCESS_INDEX", "0")),
        }
        self.logger.info(json.dumps(json_value(record), allow_nan=False))

    def log(self, name: str, value: Any, description: str = "", step: int | None = None
            ) -> None:
        self.write("metric", name, value if step is None else {"step": step, "value": value},
                   description)

    def log_list(self, name: str, value: list[Any], description: str = "") -> None:
        self.write("metric", name, list(value), description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self.write("metric", name, kwargs, description)

    def log_table(self, name: str, value: dict[str, list[Any]], description: str = ""
                  ) -> None:
        self.write("metric", name, value, description)

    def tag(self, key: str, value: str | None = None) -> None:
        self.tags[key] = value
        self.write("tag", key, value, None)

    def set_tags(self, tags: dict[str, str | None]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, str | None]:
        return dict(self.tags)

    def complete(self, _set_status: bool = True) -> None:
        """Nothing to close: every line is written when logged."""

    def flush(self, timeout_seconds: int = 300) -> None:
        """Nothing is buffered."""
