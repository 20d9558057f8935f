"""The storage servers themselves: each fixture's server works with pyarrow.fs (write, list,
ranged read, delete), answers raw signed requests, and keeps its data across stop()/start()."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pyarrow import fs

from tests.storage_servers import KINDS, AzureServer, Kind, StorageServer

from .conftest import MakeStorageServer

SERVER_FIXTURES = {"s3": "s3_server", "azure": "azure_server", "gcs": "gcs_server"}


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> StorageServer:
    """Each session server in turn."""
    kind: Kind = request.param
    found: StorageServer = request.getfixturevalue(SERVER_FIXTURES[kind])
    return found


def write(filesystem: Any, path: str, data: bytes) -> None:
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def read(filesystem: Any, path: str) -> bytes:
    with filesystem.open_input_stream(path) as stream:
        data: bytes = stream.read()
    return data


def test_write_list_read_range_delete(server: StorageServer) -> None:
    filesystem = server.filesystem()
    prefix = f"{server.bucket}/{uuid.uuid4().hex}"
    payload = bytes(range(256)) * 40  # 10 KiB
    write(filesystem, f"{prefix}/a/one.bin", payload)
    write(filesystem, f"{prefix}/a/b/two.bin", b"two")

    listed = filesystem.get_file_info(fs.FileSelector(prefix, recursive=True))
    files = {info.path: info.size for info in listed if info.type == fs.FileType.File}
    assert files == {f"{prefix}/a/one.bin": len(payload), f"{prefix}/a/b/two.bin": 3}

    with filesystem.open_input_file(f"{prefix}/a/one.bin") as handle:
        assert handle.size() == len(payload)
        assert handle.read_at(100, 5000) == payload[5000:5100]
        assert handle.read_at(100, len(payload) - 10) == payload[-10:]

    filesystem.delete_file(f"{prefix}/a/one.bin")
    assert filesystem.get_file_info(f"{prefix}/a/one.bin").type == fs.FileType.NotFound
    # delete_dir would also delete a `prefix/` marker object, which GCS lacks here (pyarrow's
    # GcsFileSystem.delete_dir then fails with NOT_FOUND): delete the contents only.
    filesystem.delete_dir_contents(prefix)
    assert filesystem.get_file_info(f"{prefix}/a/b/two.bin").type == fs.FileType.NotFound


def test_env_and_uri_name_the_server(server: StorageServer) -> None:
    env = server.env
    address = f"127.0.0.1:{server.port}"
    assert any(address in value for value in env.values())
    assert server.uri("x/y.txt").endswith("/x/y.txt")
    assert server.bucket in server.uri("x/y.txt")


def test_raw_requests_see_pyarrow_writes(server: StorageServer) -> None:
    name = f"raw-{uuid.uuid4().hex}.txt"
    write(server.filesystem(), f"{server.bucket}/{name}", b"seen")
    if server.kind == "s3":
        reply = server.request("GET", f"/{server.bucket}/{name}")
    elif server.kind == "azure":
        reply = server.request("GET", f"/devstoreaccount1/{server.bucket}/{name}")
    else:
        path = f"/storage/v1/b/{server.bucket}/o/{name}"
        reply = server.request("GET", path, query={"alt": "media"})
    assert (reply.status, reply.body) == (200, b"seen")


def test_azure_pyarrow_uri_reaches_azurite(azure_server: AzureServer) -> None:
    name = f"uri-{uuid.uuid4().hex}.txt"
    write(azure_server.filesystem(), f"{azure_server.bucket}/{name}", b"by uri")
    filesystem, path = fs.FileSystem.from_uri(azure_server.pyarrow_uri(name))
    assert read(filesystem, path) == b"by uri"


@pytest.mark.parametrize("kind", KINDS)
def test_stop_start_keeps_port_and_data(kind: Kind, make_storage_server: MakeStorageServer) -> None:
    server = make_storage_server(kind)
    filesystem = server.filesystem()
    path = f"{server.bucket}/kept/data.txt"
    write(filesystem, path, b"still here")
    port = server.port

    server.stop()
    assert not server.running
    with pytest.raises(OSError):
        server.request("GET", "/", timeout=2)
    server.start()

    assert server.port == port
    assert read(server.filesystem(), path) == b"still here"
    write(server.filesystem(), f"{server.bucket}/kept/after.txt", b"new")
    assert read(server.filesystem(), f"{server.bucket}/kept/after.txt") == b"new"


def test_pause_hangs_requests_until_resume(azure_server: AzureServer) -> None:
    azure_server.pause()
    try:
        with pytest.raises(TimeoutError):
            azure_server.request("GET", "/devstoreaccount1", query={"comp": "list"}, timeout=1)
    finally:
        azure_server.resume()
    reply = azure_server.request("GET", "/devstoreaccount1", query={"comp": "list"})
    assert reply.status == 200
