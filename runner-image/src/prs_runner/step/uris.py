"""Where a step's data lives: the URI forms a step may use, parsed without any I/O.

A plain path (or `file://`) is a local folder, `pvc://CLAIM/path` a mounted claim, and three
object stores are reached through pyarrow.fs: `s3://BUCKET/prefix` (any S3-compatible
endpoint), `gs://BUCKET/prefix`, and Azure Blob / ADLS Gen2 in the forms Azure users write,
`abfs[s]://CONTAINER@ACCOUNT.dfs.core.windows.net/path` and `az://CONTAINER/path` (the
account then comes from the environment). Keys are checked as paths are: no empty, `.` or
`..` segment, so that a prefix means one place and the output cannot be aliased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OBJECT_SCHEMES = ("s3", "gs", "abfs", "abfss", "az")
SCHEMES = ("file", "pvc", *OBJECT_SCHEMES)
FORMS = "a path, file://, pvc://CLAIM/..., s3://BUCKET/..., gs://BUCKET/..., " \
        "abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/... or az://CONTAINER/..."
# S3's and GCS's bucket names, Azure's container names: lowercase letters, digits, dots and
# dashes, 3 to 63 long, starting and ending with a letter or digit (Azure allows no dots and
# GCS allows underscores: each service has the last word on its own names).
BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
AZURE_HOST = re.compile(r"([a-z0-9]{3,24})\.(?:dfs|blob)\.core\.windows\.net")


class UriError(ValueError):
    """A URI no storage can take; the message says which form it should have."""


@dataclass(frozen=True)
class Location:
    scheme: str  # "" for a local path, else one of SCHEMES
    bucket: str  # the bucket, container or claim; "" for a local path
    path: str  # the key prefix inside the bucket ('/'-separated, no leading '/'), or the path
    account: str = ""  # an Azure storage account, when the URI names it

    @property
    def remote(self) -> bool:
        return self.scheme in OBJECT_SCHEMES


def parse_uri(uri: str) -> Location:
    scheme, separator, rest = uri.partition("://")
    if not separator:
        return Location("", "", uri)
    if scheme == "file":
        return Location("file", "", rest)
    if scheme not in SCHEMES:
        raise UriError(f"{uri}: unknown scheme {scheme}://; use {FORMS}")
    if scheme in ("abfs", "abfss"):
        return parse_abfs(uri, rest)
    bucket, _, path = rest.partition("/")
    if scheme != "pvc" and not BUCKET.fullmatch(bucket):
        raise UriError(f"{uri}: {bucket!r} is not a bucket or container name (3-63 lowercase "
                       "letters, digits, dots or dashes)")
    if not bucket:
        raise UriError(f"{uri}: the claim name is missing (pvc://CLAIM/path)")
    return Location(scheme, bucket, key_prefix(uri, path))


def uses_object_storage(spec: dict[str, Any]) -> bool:
    """Whether any of the step's URIs (input, output, side inputs) is on an object store."""
    sides = spec.get("sideInputs") or []
    uris = [spec["input"]["uri"], spec["output"]["uri"], *(s["uri"] for s in sides)]
    return any(parse_uri(uri).remote for uri in uris)


def parse_abfs(uri: str, rest: str) -> Location:
    where, _, path = rest.partition("/")
    container, at, host = where.partition("@")
    host_match = AZURE_HOST.fullmatch(host)
    if not at or host_match is None:
        raise UriError(f"{uri}: write abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH "
                       "(or az://CONTAINER/PATH with the account in the environment)")
    if not BUCKET.fullmatch(container):
        raise UriError(f"{uri}: {container!r} is not a container name (3-63 lowercase "
                       "letters, digits or dashes)")
    return Location("abfs", container, key_prefix(uri, path), host_match[1])


def key_prefix(uri: str, path: str) -> str:
    """PATH as a key prefix: one trailing '/' is allowed, no empty, '.' or '..' segment."""
    parts = path.split("/")
    if parts[-1] == "":
        parts.pop()  # "bucket/" and "bucket/folder/": one trailing slash
    if any(part in ("", ".", "..") for part in parts):
        raise UriError(f"{uri}: a path segment is empty, '.' or '..'; write each folder once")
    if "\x00" in path:
        raise UriError(f"{uri}: a NUL character in the path")
    return "/".join(parts)
