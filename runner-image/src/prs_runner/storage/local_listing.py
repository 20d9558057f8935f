"""Listing a local input folder: every file under it, through links to files and to folders
(as `find -L` lists them), each under the path it has below the folder listed.

A linked folder is entered like any other, unless it leads back to a folder on the way to it
(a loop: it would be listed forever) or into a place the caller must not read (AVOID: the
step's output, whose results a run would read back). Those are problems, named with the
others; nothing under the folder is left out in silence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

UNREADABLE_FOLDER = "cannot read this folder"
LOOPING_LINK = "a link to a folder it is in (a loop); remove it, or narrow the glob"
# folder problems: whatever the glob, the files under such a folder could match it
FOLDER_PROBLEMS = (UNREADABLE_FOLDER, LOOPING_LINK, "a link into ")

Problem = tuple[str, str]  # (path, why)


class FileEntry(NamedTuple):  # a tuple: a listing holds one per file, up to millions
    path: str  # relative to the listed root, '/'-separated
    size: int
    mtime_ns: int


class Folder(NamedTuple):
    path: str  # where it is on disk, as reached
    prefix: str  # its path below the listed root, '/'-ended ('' for the root)
    # the real paths of the root, of the linked folders above and of the folders that
    # hold their links: a link to any of them (or above) leads round in a circle
    chain: tuple[str, ...]


def list_local(root: str, avoid: Sequence[str] = ()) -> tuple[list[FileEntry], list[Problem]]:
    """The files under the folder ROOT and what could not be listed. AVOID: real paths of
    folders no link may lead into (or to a folder holding them)."""
    entries: list[FileEntry] = []
    problems: list[Problem] = []
    # os.scandir rather than os.walk: at a million files the walk's own bookkeeping and
    # path joins cost more than the one stat per file that is needed anyway.
    folders = [Folder(root, "", (os.path.realpath(root),))]
    while folders:
        folder = folders.pop()
        try:
            listing = list(os.scandir(folder.path))
        except OSError as error:
            where = os.path.relpath(str(error.filename), root)
            problems.append((where, UNREADABLE_FOLDER + f" ({error.strerror})"))
            continue
        for entry in listing:
            path = folder.prefix + entry.name
            if folder_entry(entry):
                inner = entered(folder, entry, path, avoid)
                if isinstance(inner, Folder):
                    folders.append(inner)
                else:
                    problems.append((path, inner))
                continue
            if avoid and entry.is_symlink() and into_avoided(os.path.realpath(entry.path), avoid):
                # a file's problem (the glob may leave it out), worded apart from a folder's
                problems.append((path, "a link to a file in the step's output: a run would "
                                 "read its own results back; remove the link, or narrow the glob"))
                continue
            try:
                path.encode("utf-8")
                stat = entry.stat()
            except UnicodeEncodeError:
                problems.append((path, "its name is not UTF-8; rename it"))
                continue
            except OSError as error:
                problems.append((path, f"{error.strerror} (a dangling or looping link?)"))
                continue
            entries.append(FileEntry(path, stat.st_size, stat.st_mtime_ns))
    return entries, problems


def entered(folder: Folder, entry: os.DirEntry[str], path: str,
            avoid: Sequence[str]) -> Folder | str:
    """The folder ENTRY of FOLDER, to be listed as PATH; or why a linked one is not."""
    if not entry.is_symlink():
        return Folder(entry.path, path + "/", folder.chain)
    target = os.path.realpath(entry.path)
    around = (*folder.chain, os.path.realpath(folder.path))
    if any(within(place, target) for place in around):
        return LOOPING_LINK
    return into_avoided(target, avoid) or Folder(entry.path, path + "/", (*around, target))


def into_avoided(target: str, avoid: Sequence[str]) -> str:
    """Why a link to TARGET (a real path) is not followed: it leads into a place to AVOID,
    or to a folder holding one; '' when it does not."""
    for place in avoid:
        if within(place, target) or within(target, place):
            return (f"a link into {place}, the step's output: a run would read its own "
                    "results back; remove the link, or narrow the glob")
    return ""


def within(path: str, folder: str) -> bool:
    """Whether PATH is FOLDER or below it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def folder_entry(entry: os.DirEntry[str]) -> bool:
    """Whether ENTRY is a folder (through a link too); a link that loops or dangles is not
    (listing it as a file then names it as a problem)."""
    try:
        return entry.is_dir()
    except OSError:
        return False
