"""The glob of `input.glob`: which listed paths belong to the input. Pure."""

from __future__ import annotations

import re


class GlobError(ValueError):
    """A glob that is not a valid pattern (e.g. a reversed range, `[z-a]`)."""


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """`**` spans folders, `*` and `?` stay within one path segment."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : end]
            parts.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            char = pattern[i]
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(char) or re.escape(char))
            i += 1
    try:
        return re.compile("".join(parts) + r"\Z")
    except re.error as error:
        raise GlobError(f"{pattern!r} is not a valid glob ({error})") from None
