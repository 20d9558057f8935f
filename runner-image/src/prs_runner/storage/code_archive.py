"""Code packed by `prs submit`: a ConfigMap holding one deterministic `source.tar.gz`.

Packing is byte-stable (sorted names, zero mtimes, fixed owner), so the same folder always
gives the same archive and the same content-hash ConfigMap name."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile

ARCHIVE_NAME = "source.tar.gz"


def pack_directory(root: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(
        fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT
    ) as archive:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                path = os.path.join(folder, name)
                info = archive.gettarinfo(path, arcname=os.path.relpath(path, root))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                info.mode = 0o644
                with open(path, "rb") as stream:
                    archive.addfile(info, stream)
    return buffer.getvalue()


def code_digests(root: str) -> list[tuple[str, str]]:
    """(path relative to ROOT, sha256 hex) of every file of the code folder, sorted, read in
    1 MiB chunks: a large file in the code folder costs time, never memory. Hidden folders,
    `__pycache__` and the runner's own `_prs/` folders are left out."""
    digests = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "_prs")
                         and not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(folder, name)
            sha = hashlib.sha256()
            with open(path, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    sha.update(chunk)
            digests.append((os.path.relpath(path, root), sha.hexdigest()))
    return digests


def unpack_code_root(root: str) -> str:
    """The folder to import the entry script from: ROOT itself, or, when ROOT holds an
    archive from `prs submit`, a private folder it was unpacked into (the pod's /tmp)."""
    archive_path = os.path.join(root, ARCHIVE_NAME)
    if not os.path.isfile(archive_path):
        return root
    target = tempfile.mkdtemp(prefix="prs-code-")
    try:
        with tarfile.open(archive_path, mode="r:gz") as archive:
            if hasattr(tarfile, "data_filter"):  # extraction filters: Python 3.11.4+ (PEP 706)
                archive.extractall(target, filter="data")
            else:
                archive.extractall(target, members=checked_members(archive, target))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # nothing half-unpacked left behind
        raise
    return target


def checked_members(archive: tarfile.TarFile, target: str) -> list[tarfile.TarInfo]:
    """Without extraction filters (Debian bookworm's python3 is 3.11.2): the members of an
    archive from `prs submit`, which packs regular files only, or ValueError for a link, a
    device, an absolute name or one leading out of TARGET. Modes are reset as the "data"
    filter does."""
    root = os.path.realpath(target)
    members = archive.getmembers()
    for member in members:
        path = os.path.realpath(os.path.join(root, member.name))
        if not (member.isfile() or member.isdir()) or os.path.isabs(member.name) \
                or os.path.commonpath([root, path]) != root:
            raise ValueError(f"{ARCHIVE_NAME}: refusing to unpack {member.name!r}")
        member.mode = 0o755 if member.isdir() else 0o644
    return members
