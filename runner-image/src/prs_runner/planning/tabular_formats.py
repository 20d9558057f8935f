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
        # Equivalent mutants: a "." left of the last "/" gives a suffix holding a "/", and a
        # dotless name "" or one character: no key either way (test_tabular_formats.py pins
        # the rest of these two lines: case, last dot).
        name = path.rsplit("/", 1)[-1].lower()  # pragma: no mutate: folder dots give no key
        suffix = name[name.rfind("."):] if "." in name else ""  # pragma: no mutate: dotless: no key
        formats.add(FORMAT_BY_SUFFIX.get(suffix))
    return formats.pop() if len(formats) == 1 else None
