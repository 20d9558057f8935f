"""Code packed by `prs submit`: a ConfigMap holding one deterministic `source.tar.gz`.

Packing is byte-stable (sorted names, zero mtimes, fixed owner), so the same folder always
gives the same archive and the same content-hash ConfigMap name."""

from __future__ import annotations

import gzip
import io
import os
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


def read_code_files(root: str) -> list[tuple[str, bytes]]:
    """Every file of the code folder ROOT with its path relative to ROOT, in sorted order."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(folder, name)
            with open(path, "rb") as stream:
                files.append((os.path.relpath(path, root), stream.read()))
    return files


def unpack_code_root(root: str) -> str:
    """The folder to import the entry script from: ROOT itself, or, when ROOT holds an
    archive from `prs submit`, a private folder it was unpacked into (the pod's /tmp)."""
    archive_path = os.path.join(root, ARCHIVE_NAME)
    if not os.path.isfile(archive_path):
        return root
    target = tempfile.mkdtemp(prefix="prs-code-")
    with tarfile.open(archive_path, mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    return target
