"""The progress key follows its file: a changed Secret is used for new tokens at once, and
tokens made with the key before it are still accepted."""

from __future__ import annotations

import os
from pathlib import Path

from prs_operator.progress_key import ProgressKey


def swap(path: Path, key: bytes) -> None:
    """As the kubelet updates a mounted Secret: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(key + b"\n")
    os.replace(fresh, path)


def test_a_changed_key_file_is_used_at_once_and_the_old_key_still_accepted(
        tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"first\n")
    keys = ProgressKey(str(path), b"first")
    assert keys.current() == b"first" and keys.accepted() == (b"first",)
    swap(path, b"second")
    assert keys.current() == b"second"
    assert keys.accepted() == (b"second", b"first")
    swap(path, b"third")
    assert keys.accepted() == (b"third", b"second")  # only one key back


def test_an_unchanged_or_missing_file_keeps_the_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"first")
    keys = ProgressKey(str(path), b"first")
    swap(path, b"first")  # same content, new file
    assert keys.accepted() == (b"first",)
    path.unlink()
    assert keys.current() == b"first"
    swap(path, b"")  # an empty file is not a key
    assert keys.accepted() == (b"first",)


def test_without_a_file_the_start_key_stays() -> None:
    keys = ProgressKey("", b"generated")
    assert keys.current() == b"generated" and keys.accepted() == (b"generated",)
