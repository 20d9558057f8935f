"""The names Azure ML's runtime gives entry scripts (`azureml_user.parallel_run`, a small part
of `azureml.core`), served to a worker only when its script imports them and only where no
real package of that name is installed. docs/azure-names.md lists them."""

from __future__ import annotations

DOCS = "docs/azure-names.md"
PROVIDED = (
    "azureml_user.parallel_run.EntryScript, azureml.core.Model.get_model_path and "
    "azureml.core.Run.get_context() with log, log_list, log_row, log_table, tag, set_tags, "
    "get_tags, complete, flush"
)


def not_provided(name: str) -> str:
    """One line: what was asked for, what exists instead, where it is written down."""
    return (f"{name} is not provided: this runtime provides only {PROVIDED} (see {DOCS}); "
            "install the real package for the rest")
