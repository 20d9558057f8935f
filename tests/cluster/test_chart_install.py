"""The Helm chart against the real control plane: its rendered manifests are accepted by a
server-side apply, and `kubectl auth can-i --list` for its ServiceAccount shows exactly the
permissions in files/operator-rules.yaml (beyond what every service account has), cluster-wide
and in namespaced mode. `helm install`/`upgrade`/`uninstall` run for real, too.

The operator pod does not run here (its image is not built in this tier, and the node agent
only runs containers with an explicit command): the tests check what the API server stores
and grants, not the operator's behaviour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm_cli import CHART, Helm, by_kind, only
from tests.chart.rbac_rules import (
    Grant,
    describe,
    grants_of_rules,
    is_cluster_scoped,
    load_operator_rules,
    parse_can_i_list,
)

from .controlplane import ControlPlane, wait_for
from .operator_process import OperatorProcess, kubeconfig_for
from .step_scenarios import stage_digits

pytestmark = pytest.mark.cluster

FIELD_MANAGER = "chart-test"
DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    watched: tuple[str, ...]
    docs: list[dict[str, Any]]  # as rendered by helm template
    applied: str  # what `kubectl apply --server-side` printed

    @property
    def service_account(self) -> str:
        return str(only(self.docs, "ServiceAccount")["metadata"]["name"])

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def apply_server_side(plane: ControlPlane, docs: list[dict[str, Any]], path: Path) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    done = plane.kubectl(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", str(path), check=False
    )
    assert done.returncode == 0, f"server-side apply refused the chart:\n{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class Releases:
    cluster_wide: Release
    namespaced: Release  # watching two namespaces
    unwatched: str  # a namespace the namespaced release does not watch


@pytest.fixture(scope="module")
def releases(
    control_plane: ControlPlane, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Releases]:
    """Two releases rendered by helm and applied server-side: cluster-wide and namespaced."""
    workdir = tmp_path_factory.mktemp("chart")
    plans = {
        "cluster-wide": (unique("prs"), unique("prs-system"), ()),
        "namespaced": (unique("prs"), unique("prs-ops"), (unique("team-a"), unique("team-b"))),
    }
    unwatched = unique("team-c")
    namespaces = [unwatched]
    for _, namespace, watched in plans.values():
        namespaces += [namespace, *watched]
    for namespace in namespaces:
        control_plane.kubectl("create", "namespace", namespace)
    made: dict[str, Release] = {}
    try:
        for key, (name, namespace, watched) in plans.items():
            docs = helm.template({"watchNamespaces": list(watched)}, name, namespace,
                                 include_crds=key == "cluster-wide")
            applied = apply_server_side(control_plane, docs, workdir / f"{key}.yaml")
            made[key] = Release(name, namespace, watched, docs, applied)
        yield Releases(made["cluster-wide"], made["namespaced"], unwatched)
    finally:
        for release in made.values():
            # The CRD stays: other tests of the session use it.
            for doc in release.docs:
                if doc["kind"] == "CustomResourceDefinition":
                    continue
                where = ["-n", doc["metadata"]["namespace"]] if "namespace" in doc[
                    "metadata"] else []
                control_plane.kubectl("delete", doc["kind"], doc["metadata"]["name"], *where,
                                      "--ignore-not-found", "--wait=false", check=False)
        control_plane.kubectl("delete", "namespace", "--wait=false", "--ignore-not-found",
                              *namespaces, check=False)


def test_server_side_apply_accepts_every_rendered_object(
    control_plane: ControlPlane, releases: Releases
) -> None:
    for release in (releases.cluster_wide, releases.namespaced):
        for doc in release.docs:
            kind, name = doc["kind"], doc["metadata"]["name"]
            assert f"{name} serverside-applied" in release.applied, (kind, name, release.applied)
            namespace = doc["metadata"].get("namespace")
            where = ["-n", namespace] if namespace else []
            stored = yaml.safe_load(
                control_plane.kubectl("get", kind, name, *where, "-o", "yaml").stdout
            )
            assert stored["metadata"]["labels"] == doc["metadata"]["labels"], (kind, name)


def test_deployment_is_stored_as_rendered_and_gets_a_pod(
    control_plane: ControlPlane, releases: Releases
) -> None:
    release = releases.cluster_wide
    deployment = only(release.docs, "Deployment")
    name = deployment["metadata"]["name"]
    stored = yaml.safe_load(control_plane.kubectl(
        "get", "deployment", name, "-n", release.namespace, "-o", "yaml").stdout)
    (container,) = stored["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert stored["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    # The Deployment controller turns the template into a pod: the API server's pod
    # validation accepted it (probes, volumes, security context). It is not expected to run.
    labels = deployment["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{key}={value}" for key, value in labels.items())

    def pod_created() -> dict[str, Any] | None:
        pods = yaml.safe_load(control_plane.kubectl(
            "get", "pods", "-n", release.namespace, "-l", selector, "-o", "yaml").stdout)
        return pods["items"][0] if pods["items"] else None

    pod = wait_for(pod_created, 60, f"a pod of deployment {name}")
    assert pod["spec"]["serviceAccountName"] == release.service_account


def can_i_list(plane: ControlPlane, user: str, namespace: str) -> set[Grant]:
    done = plane.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace)
    return parse_can_i_list(done.stdout)


def baseline(plane: ControlPlane, namespace: str, target: str) -> set[Grant]:
    """What a fresh service account with no bindings may do in TARGET: the discovery and
    self-review rules every authenticated user has. Measured, not hard-coded."""
    name = unique("nobody")
    plane.kubectl("create", "serviceaccount", name, "-n", namespace)
    try:
        return can_i_list(plane, f"system:serviceaccount:{namespace}:{name}", target)
    finally:
        plane.kubectl("delete", "serviceaccount", name, "-n", namespace, check=False)


def assert_grants(actual: set[Grant], base: set[Grant], needed: set[Grant]) -> None:
    missing = needed - actual
    extra = actual - base - needed
    assert not missing, f"the operator needs, but is not granted: {describe(missing)}"
    assert not extra, f"granted beyond the operator's needs: {describe(extra)}"


NEEDED = grants_of_rules(load_operator_rules())


def test_cluster_wide_service_account_gets_exactly_the_operator_rules(
    control_plane: ControlPlane, releases: Releases
) -> None:
    release = releases.cluster_wide
    # Any namespace: a step may be created anywhere. The default one has no chart objects.
    for target in ("default", releases.unwatched):
        base = baseline(control_plane, release.namespace, target)
        assert not base & NEEDED, f"the baseline already grants {describe(base & NEEDED)}"
        assert_grants(can_i_list(control_plane, release.user, target), base, NEEDED)


def test_namespaced_service_account_is_confined_to_the_watched_namespaces(
    control_plane: ControlPlane, releases: Releases
) -> None:
    release = releases.namespaced
    cluster_reading = {g for g in NEEDED if is_cluster_scoped(g)}
    in_namespace = {g for g in NEEDED if not is_cluster_scoped(g)}
    assert cluster_reading and in_namespace
    for target in release.watched:
        base = baseline(control_plane, release.namespace, target)
        actual = can_i_list(control_plane, release.user, target)
        assert_grants(actual, base, cluster_reading | in_namespace)
    unwatched = releases.unwatched
    base = baseline(control_plane, release.namespace, unwatched)
    assert_grants(can_i_list(control_plane, release.user, unwatched), base, cluster_reading)
    # The permission check itself, for one verb: a Job in a watched namespace, not elsewhere.
    for target, expected in ((release.watched[0], "yes"), (unwatched, "no")):
        done = control_plane.kubectl("auth", "can-i", "create", "jobs.batch",
                                     f"--as={release.user}", "-n", target, check=False)
        assert done.stdout.strip() == expected, (target, done.stdout, done.stderr)


def test_helm_install_upgrade_and_uninstall_remove_the_release(
    control_plane: ControlPlane, helm: Helm
) -> None:
    """The progress key's Secret is the operator's to create (test_progress_key_secret.py):
    Helm neither makes nor replaces one."""
    name, namespace = unique("prs"), unique("prs-helm")
    common = ("--kubeconfig", str(control_plane.kubeconfig), "-n", namespace)
    cluster_role = f"{name}-parallelrun-operator-{namespace}"

    def secrets() -> list[str]:
        return control_plane.kubectl("get", "secrets", "-n", namespace, "-o", "name",
                                     "-l", "app.kubernetes.io/managed-by=Helm").stdout.split()

    installed = helm.run("install", name, str(CHART), "--create-namespace", *common)
    try:
        assert installed.returncode == 0, installed.stderr
        assert "wait --for=condition=Complete" in installed.stdout  # NOTES.txt
        assert secrets() == []

        upgraded = helm.run("upgrade", name, str(CHART), "--set", "logLevel=DEBUG", *common)
        assert upgraded.returncode == 0, upgraded.stderr
        assert secrets() == []
        deployment = yaml.safe_load(control_plane.kubectl(
            "get", "deployment", f"{name}-parallelrun-operator", "-n", namespace, "-o", "yaml"
        ).stdout)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"name": "PRS_LOG_LEVEL", "value": "DEBUG"} in container["env"]
        control_plane.kubectl("get", "clusterrole", cluster_role)

        uninstalled = helm.run("uninstall", name, *common)
        assert uninstalled.returncode == 0, uninstalled.stderr
        gone = control_plane.kubectl("get", "clusterrole", cluster_role, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
        # Helm never deletes (or upgrades) what crds/ installed.
        control_plane.kubectl("get", "crd", "parallelrunsteps.parallelrun.io")
    finally:
        helm.run("uninstall", name, "--ignore-not-found", *common)
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_rendered_kinds_match_the_modes(releases: Releases) -> None:
    cluster_wide, namespaced = releases.cluster_wide, releases.namespaced
    # Cluster-wide: the Roles of the leader-election Lease and of the progress key's Secret,
    # both in the release namespace.
    assert [r["metadata"]["namespace"] for r in by_kind(cluster_wide.docs, "Role")] == [
        cluster_wide.namespace] * 2
    assert len(by_kind(cluster_wide.docs, "CustomResourceDefinition")) == 1
    assert sorted(r["metadata"]["namespace"] for r in by_kind(namespaced.docs, "Role")) == sorted(
        [*namespaced.watched, namespaced.namespace, namespaced.namespace]
    )


def test_two_operators_elect_one_leader_with_the_charts_lease_role(
    control_plane: ControlPlane, releases: Releases, tmp_path: Path
) -> None:
    """Two operators with the chart's ServiceAccount: one leads, the other waits and takes
    over when the leader dies (SIGKILL: no release of the Lease, it has to run out)."""
    release = releases.namespaced
    lease_name = only(release.docs, "Deployment")["metadata"]["name"]
    kubeconfig = kubeconfig_for(control_plane, release.namespace, release.service_account,
                                tmp_path / "chart.kubeconfig")
    operators = []
    for identity in ("op-a", "op-b"):
        workdir = tmp_path / identity
        workdir.mkdir()
        operators.append(OperatorProcess(kubeconfig, workdir, ",".join(release.watched),
                                         lease=(release.namespace, lease_name, identity)))
    first, second = operators
    first.start()
    second.start(wait=False)
    try:
        wait_for(lambda: "held by op-a" in second.log_tail(), 30, "op-b waiting for op-a")
        assert not second.healthy(), "a standby does not serve (or reconcile) anything"
        first.stop(signal.SIGKILL)
        wait_for(second.healthy, 60, "op-b taking over")
        assert "acquired the lease" in second.log_tail()
        lease = yaml.safe_load(control_plane.kubectl(
            "get", "lease", lease_name, "-n", release.namespace, "-o", "yaml").stdout)
        assert lease["spec"]["holderIdentity"] == "op-b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        for operator in operators:
            operator.stop()


def test_the_operator_under_the_charts_namespaced_account_completes_the_digits_example(
    control_plane: ControlPlane, releases: Releases, tmp_path: Path
) -> None:
    """The chart's own ServiceAccount and Roles (namespaced mode, the narrower one) are
    enough for the operator to run the digits example end to end in a watched namespace."""
    release = releases.namespaced
    watched = release.watched[0]
    control_plane.wait_for_service_account(watched)
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    claim = stage_digits(control_plane, watched)
    kubeconfig = kubeconfig_for(control_plane, release.namespace, release.service_account,
                                tmp_path / "chart.kubeconfig")
    operator = OperatorProcess(kubeconfig, tmp_path, ",".join(release.watched))
    operator.start()
    try:
        submitted = subprocess.run(
            [sys.executable, "-m", "prs_runner.commands.prs_cli", "submit",
             str(DIGITS / "cluster-step.yaml"),
             "-n", watched, "--wait", "--timeout", "240"],
            env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
            capture_output=True, text=True, timeout=300)
        assert submitted.returncode == 0, f"{submitted.stdout}\n{operator.log_tail()}"
        assert "Succeeded" in submitted.stdout
    finally:
        operator.stop()
    lines = (claim / "out" / "predict-digits" / "parallel_run_step.txt").read_text().splitlines()
    assert len(lines) == 1797
    assert "Forbidden" not in operator.log_tail(400)
