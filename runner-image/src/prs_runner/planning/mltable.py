"""An Azure MLTable folder as a tabular input: its `MLTable` file names the files (`paths`)
and how to read them (`read_delimited`, `read_parquet`, `read_json_lines`). Pure.

What this runtime cannot honour (paths outside the folder, other delimiters, transformations
such as `take` or `filter`) is refused by name, never dropped: the step would otherwise read
other rows than on Azure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from prs_runner.step.globs import GlobError, glob_to_regex
from prs_runner.step.spec import SpecError

MLTABLE_FILE = "MLTable"
READERS = {"read_delimited": "csv", "read_parquet": "parquet", "read_json_lines": "jsonl"}
# read_delimited options that keep the meaning of our CSV reading (comma, a header line).
DELIMITED_OK = {"delimiter": (",",), "header": ("all_files_same_headers", "from_first_file",
                                                "all_files_different_headers"),
                "encoding": ("utf8", "utf-8", "ascii"), "empty_as_string": (False,),
                "include_path_column": (False,), "support_multi_line": (True, False)}
WHERE = "spec.input.uri: MLTable"


@dataclass(frozen=True)
class MLTable:
    patterns: tuple[re.Pattern[str], ...]  # paths relative to the folder, as listed
    format: str

    def selects(self, path: str) -> bool:
        return path != MLTABLE_FILE and any(p.match(path) for p in self.patterns)


def parse_mltable(text: str) -> MLTable:
    """SpecError naming what the file asks that cannot be done here."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError([f"{WHERE}: not valid YAML ({str(error).splitlines()[0]})"]) from None
    if not isinstance(document, Mapping):
        raise SpecError([f"{WHERE}: expected a mapping with paths and transformations"])
    problems: list[str] = []
    patterns = path_patterns(document.get("paths"), problems)
    fmt = reader_format(document.get("transformations"), problems)
    if problems or fmt is None:
        raise SpecError(problems)
    return MLTable(tuple(patterns), fmt)


def path_patterns(paths: Any, problems: list[str]) -> list[re.Pattern[str]]:
    if not isinstance(paths, list) or not paths:
        problems.append(f"{WHERE}: paths must list file:, folder: or pattern: entries")
        return []
    out = []
    for entry in paths:
        kind, value = next(iter(entry.items())) if isinstance(entry, Mapping) and len(
            entry) == 1 else ("", None)
        if kind not in ("file", "folder", "pattern") or not isinstance(value, str):
            problems.append(f"{WHERE}: paths entry {entry!r}: give one of file:, folder:, "
                            "pattern:")
            continue
        relative = value.removeprefix("./").strip("/") if not value.startswith("/") else None
        if relative is None or "://" in value or ".." in relative.split("/"):
            problems.append(f"{WHERE}: paths {kind}: {value}: only paths inside the MLTable's "
                            "folder are read here; put the files next to it")
            continue
        glob = {"file": relative, "folder": f"{relative}/**" if relative else "**",
                "pattern": relative}[kind]
        try:
            out.append(glob_to_regex(glob))
        except GlobError as error:
            problems.append(f"{WHERE}: paths {kind}: {error}")
    return out


def reader_format(transformations: Any, problems: list[str]) -> str | None:
    """The format the one reader step gives; None (and a problem) without exactly one."""
    steps = transformations if isinstance(transformations, list) else []
    names = [next(iter(s)) if isinstance(s, Mapping) and s else str(s) for s in steps]
    readers = [n for n in names if n in READERS]
    others = [n for n in names if n not in READERS]
    if others:
        problems.append(f"{WHERE}: transformations {', '.join(others)} are not applied here; "
                        "do them in run()")
    if len(readers) != 1:
        problems.append(f"{WHERE}: transformations need one of {', '.join(READERS)}")
        return None
    step = steps[names.index(readers[0])]
    options = step[readers[0]] if isinstance(step, Mapping) else None  # `- read_parquet`
    if readers[0] == "read_delimited":
        problems += delimited_problems(options if isinstance(options, Mapping) else {})
    return READERS[readers[0]]


def delimited_problems(options: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, value in options.items():
        allowed: Sequence[Any] = DELIMITED_OK.get(key, ())
        normal = value.lower() if isinstance(value, str) else value
        if normal not in allowed:
            problems.append(f"{WHERE}: read_delimited {key}: {value!r} is not supported here "
                            f"(supported: {', '.join(repr(a) for a in allowed) or 'none'})")
    return problems
