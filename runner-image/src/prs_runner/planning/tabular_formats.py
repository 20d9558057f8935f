"""Which tabular format a listing holds, from its file names. Pure and import-light: `prs run`
decides it before anything heavy (numpy, pyarrow) is loaded."""

from __future__ import annotations

from collections.abc import Iterable

# Not .tsv (other delimiter) nor .json (often one JSON document, not JSON Lines).
FORMAT_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
                    ".jsonl": "jsonl", ".ndjson": "jsonl"}


def guess_format(paths: Iterable[str]) -> str | None:
    """The one format every file name suggests, or None when they disagree or say nothing."""
    formats = set()
    for path in paths:
        name = path.rsplit("/", 1)[-1].lower()
        suffix = name[name.rfind("."):] if "." in name else ""
        formats.add(FORMAT_BY_SUFFIX.get(suffix))
    return formats.pop() if len(formats) == 1 else None
