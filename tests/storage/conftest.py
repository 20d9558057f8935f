"""Fixtures of the storage tier: real object-storage servers on loopback (tests/storage_servers.py).

Session-wide: `s3_server` (SeaweedFS), `azure_server` (Azurite), `gcs_server`
(fake-gcs-server), each with its bucket (container) `prs-test`. A test that stops or pauses a
session server must start or resume it again before it ends; `make_storage_server(kind)` gives
a test a server of its own instead, closed after the test.

The servers are built (or found in the cache) once, before the first test; a server that cannot
be built or started fails the tests that use it, it never skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.storage_servers import Kind, StorageServer, prebuild_storage_servers, start_server


def pytest_collection_finish(session: pytest.Session) -> None:
    prebuild_storage_servers(session)


def _session_server(
    kind: Kind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageServer]:
    server = start_server(kind, tmp_path_factory.mktemp(f"{kind}-server"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    yield from _session_server("s3", tmp_path_factory)


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    yield from _session_server("azure", tmp_path_factory)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    yield from _session_server("gcs", tmp_path_factory)


MakeStorageServer = Callable[[Kind], StorageServer]


@pytest.fixture
def make_storage_server(tmp_path: Path) -> Iterator[MakeStorageServer]:
    """`make_storage_server(kind)`: a started server of the test's own, closed after it."""
    servers: list[StorageServer] = []

    def make(kind: Kind) -> StorageServer:
        server = start_server(kind, tmp_path / f"{kind}-server-{len(servers)}")
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
