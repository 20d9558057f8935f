"""All reads and writes of inputs and outputs go through here.

A `Storage` is a root URI: a local folder (a path, `file://`, or a mounted `pvc://` claim) or
an object store (`s3://`, `gs://`, `abfs://`, `az://`: object_stores.py). Local folders use
`os` directly: workers commit a result per mini-batch, and the os calls are several times
cheaper than going through pyarrow, whose import alone costs a worker about half a second.

On object stores nothing is renamed in place: an object appears whole when its upload ends
(a PUT is atomic), so commits are written straight to their names, and a file that must
appear at once after a long write (the merged output) is uploaded under a temporary name and
copied server-side. Every remote call is counted (object_reads.REQUESTS): it is what a step
costs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import IO, Any

from prs_runner.step.globs import glob_to_regex
from prs_runner.step.uris import UriError, parse_uri
from prs_runner.storage.local_files import create_fresh, publish_unnamed, write_all, write_file
from prs_runner.storage.local_listing import FOLDER_PROBLEMS, Problem, list_local
from prs_runner.storage.local_listing import FileEntry as FileEntry  # where callers take it
from prs_runner.storage.object_reads import REQUESTS, ObjectReader
from prs_runner.storage.object_stores import (
    StorageError,
    open_filesystem,
    put_patiently,
    remote_failure,
)

PVC_ROOT_ENV = "PRS_PVC_ROOT"  # where pvc://CLAIM is mounted; /mnt/pvc/CLAIM by default


UNSAFE_KEY = ("an empty, '.' or '..' segment in the key: it has no local path; rename the "
              "object")


def plain_key(path: str) -> bool:
    return all(part not in ("", ".", "..") for part in path.split("/")) and "\x00" not in path


class ListingError(OSError):
    """Entries of an input that cannot be listed; the message names them (shown escaped)."""

    def __init__(self, uri: str, problems: list[tuple[str, str]]) -> None:
        shown = "; ".join(f"{path!a}: {why}" for path, why in problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(f"cannot list {uri}: {shown}{more}; fix these entries or narrow "
                         "the glob")
        self.problems = problems


class UnsafePath(OSError):
    """A write, rename or delete the storage refuses: it would leave the root or follow a
    link out of it, or delete a whole folder other than the runner's own `_prs/`."""


def relative_parts(path: str) -> list[str]:
    """PATH's parts; UnsafePath unless it is relative and stays below its root."""
    parts = path.split("/")
    if path.startswith("/") or "\x00" in path or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(f"refusing {path!r}: not a plain path below the output folder")
    return parts


def local_root(uri: str) -> str | None:
    """The local folder behind a URI, or None when it is remote."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("pvc://"):
        claim_path = uri[len("pvc://") :]
        return os.path.join(os.environ.get(PVC_ROOT_ENV, "/mnt/pvc"), claim_path)
    if "://" in uri:
        return None
    return uri


# A small read (a CSV header) costs one small GET; a read larger than the buffer goes straight
# through to one ranged GET.
READ_BUFFER = 64 << 10

class Storage:
    def __init__(self, uri: str, patient: bool = True) -> None:
        """PATIENT: remote calls retry through an outage of about a minute (workers and the
        merge); otherwise a few seconds (planning: a wrong place or key is said at once)."""
        self.uri = uri.rstrip("/") or "/"
        try:
            location = parse_uri(self.uri)
        except UriError as error:
            raise StorageError(str(error)) from None
        self.local = local_root(self.uri)
        self._fs: Any = None
        self._root = ""
        if location.remote:
            self._fs, self._root = open_filesystem(location, self.uri, os.environ, patient)

    @contextlib.contextmanager
    def remote(self, kind: str, path: str = "") -> Iterator[None]:
        """Count one remote call of KIND and turn its failure into one line naming the URI
        (a missing object stays FileNotFoundError: callers ask for it)."""
        from pyarrow.lib import ArrowException

        REQUESTS[kind] += 1
        try:
            yield
        except (FileNotFoundError, StorageError):
            raise
        except (OSError, ArrowException) as error:  # pyarrow raises both for a store's refusal
            where = f"{self.uri}/{path}" if path else self.uri
            raise StorageError(remote_failure(where, error)) from error

    def join(self, *parts: str) -> str:
        base = self.local if self.local is not None else self._root
        return "/".join([base.rstrip("/"), *parts])

    def uri_of(self, path: str) -> str:
        """PATH below the root as something Storage() takes again: a path, or a URI."""
        return self.join(path) if self.local is not None else f"{self.uri}/{path}"

    def confined(self, path: str) -> str:
        """The full path of PATH for a write, rename or delete: relative, no `..`, and, on a
        local folder, no symlink on the way that leads out of the root (UnsafePath)."""
        relative_parts(path)
        target = self.join(path)
        if self.local is None:
            return target
        root = os.path.realpath(self.local)
        folder = os.path.realpath(os.path.dirname(target))
        if folder != root and not folder.startswith(root.rstrip("/") + "/"):
            raise UnsafePath(f"refusing to write {target}: a symbolic link on the way leads "
                             f"out of {self.local} (to {folder})")
        return target

    def list_files(self, glob: str | None = None, avoid: Sequence[str] = ()) -> list[FileEntry]:
        """Every file under the root (or the root itself if it is a file), sorted by path;
        locally through links to folders too (local_listing), but none into AVOID. An entry
        that cannot be listed (an unreadable folder, a dangling or looping symlink, a name
        that is not UTF-8) is an error, unless the glob leaves it out (a folder's problem,
        whatever the glob): ListingError names every one of them, after the whole tree was
        walked."""
        if self.local is not None:
            entries, problems = self._list_local(avoid)
        else:
            entries, problems = self._list_remote(), []
            problems = [(e.path, UNSAFE_KEY) for e in entries if not plain_key(e.path)]
            entries = [e for e in entries if plain_key(e.path)]
        if glob:
            pattern = glob_to_regex(glob)
            entries = [e for e in entries if pattern.match(e.path)]
            problems = [(p, why) for p, why in problems if why.startswith(FOLDER_PROBLEMS)
                        or pattern.match(p)]
        if problems:
            raise ListingError(self.uri, sorted(problems))
        return sorted(entries, key=lambda e: e.path)

    def _list_local(self, avoid: Sequence[str]) -> tuple[list[FileEntry], list[Problem]]:
        assert self.local is not None
        if os.path.isfile(self.local):
            stat = os.stat(self.local)
            return [FileEntry(os.path.basename(self.local), stat.st_size, stat.st_mtime_ns)], []
        if not os.path.isdir(self.local):
            raise FileNotFoundError(errno.ENOENT, "no such file or folder", self.local)
        return list_local(self.local, avoid)

    def _list_remote(self) -> list[FileEntry]:
        from pyarrow import fs as pafs

        with self.remote("head"):
            info = self._fs.get_file_info(self._root)
        if info.type == pafs.FileType.File:
            return [FileEntry(info.base_name, info.size, info.mtime_ns or 0)]
        selector = pafs.FileSelector(self._root, recursive=True, allow_not_found=True)
        with self.remote("list"):
            infos = self._fs.get_file_info(selector)
        if not infos and info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(errno.ENOENT, "no such object or prefix", self.uri)
        return [
            FileEntry(i.path[len(self._root) :].lstrip("/"), i.size, i.mtime_ns or 0)
            for i in infos
            if i.type == pafs.FileType.File
        ]

    def is_file(self) -> bool:
        """The root is one file (then list_files() holds just it, by its base name)."""
        if self.local is not None:
            return os.path.isfile(self.local)
        from pyarrow import fs as pafs

        with self.remote("head"):
            return bool(self._fs.get_file_info(self._root).type == pafs.FileType.File)

    def read_bytes(self, path: str) -> bytes:
        if self.local is not None:
            with open(self.join(path), "rb") as stream:
                return stream.read()
        with self.remote("get", path), self._fs.open_input_stream(self.join(path)) as stream:
            return stream.read()  # type: ignore[no-any-return]

    def open_read(self, path: str) -> IO[bytes]:
        if self.local is not None:
            return open(self.join(path), "rb")
        return self.open_seekable(path)

    def open_seekable(self, path: str) -> IO[bytes]:
        """For reads at offsets (byte ranges, Parquet footers and row groups)."""
        if self.local is not None:
            return open(self.join(path), "rb")
        with self.remote("get", path):
            raw = self._fs.open_input_file(self.join(path))
        return io.BufferedReader(ObjectReader(raw, f"{self.uri}/{path}"), READ_BUFFER)

    def download(self, path: str, target: str) -> int:
        """Copy the file at PATH to the local file TARGET (created fresh); its size."""
        if self.local is not None:
            shutil.copyfile(self.join(path), target)
            return os.path.getsize(target)
        size = 0
        with self.remote("get", path), self._fs.open_input_stream(self.join(path)) as stream:
            fd = create_fresh(target)
            try:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    write_all(fd, chunk)
                    size += len(chunk)
            finally:
                os.close(fd)
        return size

    def open_write(self, path: str) -> IO[bytes]:
        """A new file at `path`, created fresh: whatever was there (a symlink planted there
        included) is unlinked first, never written through."""
        target = self.confined(path)
        if self.local is not None:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.confined(path)  # the folders just made are checked too
            return os.fdopen(create_fresh(target), "wb")
        with self.remote("put", path):
            return self._fs.open_output_stream(target)  # type: ignore[no-any-return]

    def digest(self, path: str) -> tuple[int, str] | None:
        """(size, sha256 hex) of the file at PATH, read in 1 MiB chunks; None if missing."""
        sha = hashlib.sha256()
        size = 0
        try:
            with self.open_read(path) as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    sha.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, IsADirectoryError):
            return None
        return size, sha.hexdigest()

    def write_atomic(self, path: str, data: bytes) -> None:
        """Readers see the whole content or nothing: write, then publish the name."""
        target = self.confined(path)
        if self.local is None:
            with self.remote("put", path):
                put_patiently(self._fs, target, data)
        elif not publish_unnamed(target, data):
            temp = f"{path}.{os.getpid()}.tmp"  # one writer per process at a time
            try:
                write_file(self.confined(temp), data)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(self.join(temp))  # a full disk leaves no half-written file
                raise
            self.rename(temp, path)
    def rename(self, source: str, target: str) -> None:
        """Replaces `target` (a symlink there is replaced, never followed)."""
        if self.local is not None:
            os.replace(self.confined(source), self.confined(target))
            return
        # A server-side copy: the target appears whole, or not at all (no store renames).
        with self.remote("copy", target):
            self._fs.copy_file(self.confined(source), self.confined(target))
        self.delete_object(source)

    def delete_object(self, path: str) -> None:
        """Delete one object; one already gone is no failure: a call retried after the store
        applied it but its answer was lost (a timeout, a reset) finds nothing the second time."""
        with contextlib.suppress(FileNotFoundError), self.remote("delete", path):
            self._fs.delete_file(self.confined(path))

    def list_names(self, folder: str, folders: bool = False) -> list[str]:
        """The names right under FOLDER. FOLDERS: a folder there is named even on a store
        that keeps no object for it, which a listing of one level leaves out on GCS: the
        whole tree under FOLDER is listed then (for a folder of folders, seldom read)."""
        if self.local is not None:
            try:
                return os.listdir(self.join(folder))
            except FileNotFoundError:
                return []
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(self.join(folder), recursive=folders,
                                     allow_not_found=True)
        with self.remote("list", folder):
            infos = self._fs.get_file_info(selector)
        if not folders:
            return [i.base_name for i in infos]
        base = self.join(folder).rstrip("/") + "/"
        return list(dict.fromkeys(i.path.removeprefix(base).split("/")[0] for i in infos
                                  if i.path.startswith(base)))

    def delete(self, path: str) -> None:
        """Delete one file (a symlink: the link itself). A whole folder only under `_prs/`,
        the runner's own: anything else is the user's and is refused (UnsafePath)."""
        target = self.confined(path)
        own = relative_parts(path)[0] == "_prs"
        if self.local is not None:
            if os.path.islink(target) or os.path.isfile(target):
                os.remove(target)
            elif os.path.isdir(target):
                self.refuse_folder(target, own)
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)  # a socket, a fifo: not ours either way, but not a tree
            return
        from pyarrow import fs as pafs

        with self.remote("head", path):
            info = self._fs.get_file_info(target)
        if info.type == pafs.FileType.Directory:
            self.refuse_folder(target, own)
            with self.remote("delete", path):
                self._fs.delete_dir_contents(target, missing_dir_ok=True)
            with self.remote("head", path):
                marker = self._fs.get_file_info(target).type == pafs.FileType.Directory
            if marker:  # a folder marker object, where the store keeps one
                with contextlib.suppress(FileNotFoundError), self.remote("delete", path):
                    self._fs.delete_dir(target)  # gone: as in delete_object
        elif info.type == pafs.FileType.File:
            self.delete_object(path)

    @staticmethod
    def refuse_folder(target: str, own: bool) -> None:
        if not own:
            raise UnsafePath(f"refusing to delete the folder {target}: only the runner's own "
                             "_prs/ is ever deleted whole; move it away or choose another "
                             "output")


    def open_lock_file(self, path: str) -> int:
        """A descriptor on the local lock file PATH, created if new, never through a symlink."""
        assert self.local is not None, "lock files exist on local folders only"
        target = self.confined(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.confined(path)
        return os.open(target, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


