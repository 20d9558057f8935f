"""`input.glob`: which listed paths (relative, '/'-separated) belong to the input."""

from __future__ import annotations

import pytest

from prs_runner.step.globs import GlobError, glob_to_regex


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("**/*.png", "a.png", True),
    ("**/*.png", "x/y/a.png", True),
    ("**/*.png", "x/a.jpg", False),
    ("a/**", "a/b/c", True),
    ("a**", "ab/c", True),  # ** without a slash spans folders too
    ("**", "x/y", True),
    ("x/**/y", "x/y", True),  # **/ may stand for no folder at all
    ("x/**/y", "x/a/b/y", True),
    ("x/**/y", "xy", False),
    ("*.png", "x/a.png", False),  # * stays within one folder
    ("*.png", "a.png.bak", False),  # the whole path must match
    ("*", "", True),
    ("?.txt", "a.txt", True),
    ("?.txt", "ab.txt", False),
    ("a?b", "a/b", False),  # ? is not a separator
    ("[ab].txt", "a.txt", True),
    ("[ab].txt", "c.txt", False),
    ("[!ab].txt", "c.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("[]a].txt", "].txt", True),  # a ] right after [ is a member, as in fnmatch
    ("[]a].txt", "a.txt", True),
    ("[]a].txt", "b.txt", False),
    ("a[.txt", "a[.txt", True),  # a [ without its ] is itself
    ("a[.txt", "a.txt", False),
    ("a+b(1).txt", "a+b(1).txt", True),  # regex characters are literal
    ("a+b(1).txt", "aab1.txt", False),
    ("data.csv", "dataxcsv", False),
    ("[a-c]x", "bx", True),
    ("[a-c]x", "dx", False),
])
def test_glob(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(path)) is matches


@pytest.mark.parametrize(("pattern", "regex"), [
    ("**/*.png", r"(?:.*/)?[^/]*\.png\Z"),
    ("a**b", r"a.*b\Z"),
    ("?[!x]", r"[^/][^x]\Z"),
])
def test_the_regex_for_a_glob(pattern: str, regex: str) -> None:
    assert glob_to_regex(pattern).pattern == regex


@pytest.mark.parametrize("pattern", ["[z-a]*", "x[b-a]"])
def test_an_invalid_glob_raises_naming_it(pattern: str) -> None:
    with pytest.raises(GlobError) as raised:
        glob_to_regex(pattern)
    assert str(raised.value).startswith(f"{pattern!r} is not a valid glob (bad character range")
