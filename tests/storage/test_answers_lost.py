"""Store calls that the store applied but whose answer never came back (a timeout, a reset
mid-answer): the client, or PatientCalls, makes the call again. A delete made again finds
nothing; the runner's rename and delete take that as done, not as a failure (a merge that
wrote the whole output then failed on its last rename).

The lost answer itself cannot be produced on demand against a real server, so the store's
filesystem is wrapped to make each delete twice, as a retry would; both calls reach the
real server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from prs_runner.storage.filesystem import Storage
from tests.storage_servers import KINDS, StorageServer

SERVER_FIXTURES = {"s3": "s3_server", "azure": "azure_server", "gcs": "gcs_server"}


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> StorageServer:
    found: StorageServer = request.getfixturevalue(SERVER_FIXTURES[request.param])
    return found


class DeletesTwice:
    """The store's filesystem, each delete_file made again right after it succeeded."""

    def __init__(self, filesystem: Any) -> None:
        self.filesystem = filesystem
        self.repeated = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.filesystem, name)

    def delete_file(self, path: str) -> None:
        self.filesystem.delete_file(path)
        self.repeated += 1
        self.filesystem.delete_file(path)  # the retry: the object is gone now


def storage(server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> Storage:
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    return Storage(server.uri(f"lost-answers/{uuid.uuid4().hex}"))


def test_a_rename_whose_delete_is_made_again_is_done(
        server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    output = storage(server, monkeypatch)
    output.write_atomic("_prs/report/.out.txt.partial", b"merged rows\n")
    twice = DeletesTwice(output._fs)
    output._fs = twice
    output.rename("_prs/report/.out.txt.partial", "out.txt")
    assert twice.repeated == 1
    assert output.read_bytes("out.txt") == b"merged rows\n"
    assert output.list_names("_prs/report") == []


def test_a_delete_made_again_is_done(server: StorageServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    output = storage(server, monkeypatch)
    output.write_atomic("_prs/lock.d/claim", b"{}")
    twice = DeletesTwice(output._fs)
    output._fs = twice
    output.delete("_prs/lock.d/claim")
    assert twice.repeated == 1
    assert output.list_names("_prs/lock.d") == []
