"""Partition key values a file's path gives, before any data is read. Pure.

Three layouts, as Azure's data steps write them (paths relative to the input root):

- hive-style folders, `Store=1000/Brand=dominicks/part.csv`: each folder names its key;
- `input.partitionFormat`, Azure's `partition_format`: `{Store}/{Brand}/*.csv`;
- folders that hold values only, `1000/dominicks/part.csv`: the folder levels in key order,
  used only when no key is a hive folder nor a column of the file, and no key looks like a
  misspelt column (then the user meant the column, and is told so).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence
from typing import Any

HIVE_SEGMENT = re.compile(r"^([^=/]+)=([^/]*)$")
FORMAT_TOKEN = re.compile(r"(\{[A-Za-z_][A-Za-z0-9_]*\}|\*\*/|\*)")


def hive_values(path: str) -> dict[str, str]:
    """`store=12/brand=x/part.parquet` -> {"store": "12", "brand": "x"} (folders only)."""
    values = {}
    for segment in path.split("/")[:-1]:
        match = HIVE_SEGMENT.match(segment)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def typed_folder_value(text: str) -> Any:
    """A folder value as the key column would hold it: an integer as int when it reads back
    the same and fits 64 bits ("12", "-3"), else the text ("007" and "12" stay apart)."""
    if not re.fullmatch(r"-?[0-9]+", text):
        return text
    number = int(text)
    return number if str(number) == text and -(2 ** 63) <= number < 2 ** 63 else text


def format_regex(partition_format: str) -> re.Pattern[str]:
    """`{Store}/{Brand}/*.csv` -> a regex a whole relative path must match: `{Name}` is one
    value (no '/'), `*` any characters but '/', `**/` any folders, the rest literal. A name
    given twice must hold the same value both times."""
    parts, seen = [], set()
    for token in FORMAT_TOKEN.split(partition_format.strip("/")):
        if token.startswith("{"):
            name = token[1:-1]
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+)")
            seen.add(name)
        elif token == "**/":
            parts.append("(?:[^/]+/)*")
        elif token == "*":
            parts.append("[^/]*")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


def format_values(path: str, regex: re.Pattern[str]) -> dict[str, str] | None:
    """The named values of PATH, or None when it does not have the format's shape."""
    match = regex.fullmatch(path)
    return match.groupdict() if match else None


def positional_values(path: str, keys: Sequence[str]) -> dict[str, str]:
    """The first folder levels of PATH as KEYS, in order; {} when there are fewer levels
    than keys or a level is a hive folder (name=value)."""
    folders = path.split("/")[:-1]
    if len(folders) < len(keys) or any("=" in folder for folder in folders[:len(keys)]):
        return {}
    return dict(zip(keys, folders, strict=False))


def misspelt_columns(keys: Sequence[str], columns: Collection[str]) -> dict[str, str]:
    """Keys that are not columns but look like one: key -> the column."""
    by_lower = {c.lower(): c for c in columns}
    out = {}
    for key in keys:
        if key in columns:
            continue
        close = ([by_lower[key.lower()]] if key.lower() in by_lower
                 else difflib.get_close_matches(key, list(columns), n=1, cutoff=0.8))
        if close:
            out[key] = close[0]
    return out


def path_key_values(path: str, keys: Sequence[str], regex: re.Pattern[str] | None,
                    columns: Collection[str] = ()) -> dict[str, Any]:
    """Typed key values PATH gives (see the module's docstring); COLUMNS: the file's column
    names (a files input has none). Keys missing from the result must come from columns.
    ValueError when PATH does not have the partitionFormat's shape."""
    if regex is not None:
        values = format_values(path, regex)
        if values is None:
            raise ValueError(path)
        found = {k: values[k] for k in keys if k in values}
    else:
        hive = hive_values(path)
        found = {k: hive[k] for k in keys if k in hive}
        if not found and not any(k in columns for k in keys) and not misspelt_columns(
                keys, columns):
            found = positional_values(path, keys)
    return {key: typed_folder_value(value) for key, value in found.items()}
