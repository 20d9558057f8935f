"""The progress key's Secret against the real API server, with the chart's own ServiceAccount
and Roles: the operator started without the Secret creates it once, a second start reads the
same key back (reports signed with it are still accepted), replicas racing to create it all
end with one key, and a Secret the Role does not name is refused in one line."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from prs_operator.builders import progress_token
from prs_operator.progress_key_secret import stored_key
from tests.chart.helm_cli import Helm, only

from .controlplane import ControlPlane
from .operator_process import OperatorProcess, kubeconfig_for
from .test_chart_install import apply_server_side, unique

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class KeyRelease:
    namespace: str
    watched: str
    secret: str  # the progress key Secret's name, as the Deployment names it
    lease: str
    kubeconfig: Path  # the chart's ServiceAccount


@pytest.fixture(scope="module")
def key_release(control_plane: ControlPlane, helm: Helm,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyRelease]:
    """The chart rendered by `helm template` (no lookup) in namespaced mode and applied,
    without its Deployment: the operator runs here as a process with the same account."""
    workdir = tmp_path_factory.mktemp("progress-key")
    name, namespace, watched = unique("prs"), unique("prs-key"), unique("team")
    for each in (namespace, watched):
        control_plane.kubectl("create", "namespace", each)
    docs = helm.template({"watchNamespaces": [watched]}, name, namespace)
    assert [doc for doc in docs if doc["kind"] == "Secret"] == []
    deployment = only(docs, "Deployment")
    env = {e["name"]: e.get("value", "") for e in
           deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    apply_server_side(control_plane, [d for d in docs if d["kind"] != "Deployment"],
                      workdir / "release.yaml")
    account = only(docs, "ServiceAccount")["metadata"]["name"]
    try:
        yield KeyRelease(namespace, watched, env["PRS_PROGRESS_KEY_SECRET"],
                         deployment["metadata"]["name"],
                         kubeconfig_for(control_plane, namespace, account,
                                        workdir / "chart.kubeconfig"))
    finally:
        control_plane.kubectl("delete", "namespace", "--wait=false", "--ignore-not-found",
                              namespace, watched, check=False)
        for kind in ("clusterrole", "clusterrolebinding"):
            for doc in docs:
                if doc["kind"].lower() == kind:
                    control_plane.kubectl("delete", kind, doc["metadata"]["name"],
                                          "--ignore-not-found", check=False)


def read_secret(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(plane.kubectl(
        "get", "secret", name, "-n", namespace, "-o", "yaml").stdout)
    return found


def report_status(operator: OperatorProcess, key: bytes) -> int:
    """POST a progress report signed with KEY: 200 when the operator accepts it."""
    where = ("team", "some-step", "uid-1")
    body = {"namespace": where[0], "name": where[1], "uid": where[2],
            "report": {"shard": 0, "counts": {"succeeded": 1}}}
    request = urllib.request.Request(
        f"{operator.url}/v1/progress", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {progress_token(key, *where)}",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_first_start_creates_the_key_and_the_next_one_keeps_it(
        control_plane: ControlPlane, key_release: KeyRelease, tmp_path: Path) -> None:
    release = key_release
    operator = OperatorProcess(release.kubeconfig, tmp_path, release.watched,
                               lease=(release.namespace, release.lease, "op-a"),
                               key_secret=(release.namespace, release.secret))
    missing = control_plane.kubectl("get", "secret", release.secret, "-n", release.namespace,
                                    check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    operator.start()
    try:
        created = read_secret(control_plane, release.namespace, release.secret)
        key = base64.b64decode(created["data"]["key"])
        assert len(key) == 64
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
            "parallelrun-operator")
        assert "created Secret" in operator.log_tail()
        assert report_status(operator, key) == 200
        assert report_status(operator, b"another key") == 401
    finally:
        operator.stop()

    operator.start()  # as a restarted pod: the volume may still be empty
    try:
        kept = read_secret(control_plane, release.namespace, release.secret)
        assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert report_status(operator, key) == 200, operator.log_tail()
        assert "created Secret" not in operator.log_tail()
    finally:
        operator.stop()


def test_replicas_racing_to_create_the_key_all_get_the_same_one(
        control_plane: ControlPlane, key_release: KeyRelease) -> None:
    name = f"{key_release.secret}-race"  # not the Role's name: created by the admin account
    replicas = 6
    start = threading.Barrier(replicas)
    keys: list[bytes] = []

    def replica() -> None:
        with control_plane.api_client() as api:
            start.wait(30)
            keys.append(stored_key(client.CoreV1Api(api), key_release.namespace, name))

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(keys) == replicas and len(set(keys)) == 1, keys
    stored = read_secret(control_plane, key_release.namespace, name)
    assert base64.b64decode(stored["data"]["key"]) == keys[0]


def test_a_secret_the_role_does_not_name_is_refused_in_one_line(
        control_plane: ControlPlane, key_release: KeyRelease, tmp_path: Path) -> None:
    release = key_release
    other = f"{release.secret}-other"
    control_plane.kubectl("create", "secret", "generic", other, "-n", release.namespace,
                          "--from-literal=key=not-for-the-operator")
    operator = OperatorProcess(release.kubeconfig, tmp_path, release.watched,
                               key_secret=(release.namespace, other))
    operator.start(wait=False)
    assert operator.process is not None
    assert operator.process.wait(60) == 1
    last = operator.log_tail().splitlines()[-1]
    assert last.startswith(f"prs-operator: cannot read Secret {release.namespace}/{other} "
                           "holding the progress key: 403 Forbidden"), operator.log_tail()
    assert "Traceback" not in operator.log_tail()
