"""API calls give up on a server that accepts the connection and never answers (a network
that dropped it without a reset), and a leader whose renewals hang still exits in time.
The server here is a real listening socket that never replies."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from urllib3.exceptions import ReadTimeoutError

from prs_operator import leader_lease
from prs_operator.actions import DeleteJob
from prs_operator.kube import Cluster
from prs_operator.leader_lease import LeaseLock, attempt, exit_when_lost


@pytest.fixture
def silent_server() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def api_client(host: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = host
    configuration.retries = False
    return client.ApiClient(configuration)


@pytest.mark.parametrize("call", [
    lambda cluster: cluster.patch_status("ns", "step", {"phase": "Running"}),
    lambda cluster: cluster.apply("ns", DeleteJob("job-a")),
    lambda cluster: cluster.job_uids("ns", "step"),
])
def test_every_cluster_call_gives_up_on_a_silent_server(silent_server: str, call: object) -> None:
    cluster = Cluster(api_client(silent_server), timeout=(1.0, 0.5))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        call(cluster)  # type: ignore[operator]
    assert time.monotonic() - started < 5


def test_a_lease_call_on_a_silent_server_fails_within_its_timeout(
    silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leader_lease, "CALL_TIMEOUT", (0.5, 0.5))
    lock = LeaseLock(client.CoordinationV1Api(api_client(silent_server)), "ns", "lease", "me")
    started = time.monotonic()
    assert attempt(lock) is False
    assert time.monotonic() - started < 5


def test_the_watchdog_exits_once_the_last_renewal_is_too_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leader_lease, "LEASE_SECONDS", 1)
    monkeypatch.setattr(leader_lease, "RENEW_EVERY", 0.5)
    lock = LeaseLock(None, "ns", "lease", "me")
    codes: list[int] = []
    lock.renewed = time.monotonic()
    started = time.monotonic()
    exit_when_lost(lock, codes.append, check_every=0.05)
    waited = time.monotonic() - started
    assert codes == [1]
    assert 0.45 <= waited < 2


def test_the_watchdog_stays_while_renewals_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leader_lease, "LEASE_SECONDS", 1)
    monkeypatch.setattr(leader_lease, "RENEW_EVERY", 0.5)
    lock = LeaseLock(None, "ns", "lease", "me")
    codes: list[int] = []
    watchdog = threading.Thread(target=exit_when_lost, args=(lock, codes.append, 0.05),
                                daemon=True)
    watchdog.start()
    for _ in range(20):  # 1 s of renewals every 0.05 s
        lock.renewed = time.monotonic()
        time.sleep(0.05)
    assert codes == []
    watchdog.join(3)
    assert codes == [1]
