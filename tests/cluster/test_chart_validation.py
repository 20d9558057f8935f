"""The chart against the real API server: every rendered object, with every option on, passes
a server-side dry run with strict field validation (the monitoring.coreos.com kinds against
the prometheus-operator CRDs of a pinned release), the Artifact Hub example step is accepted
by the CRD, and the aggregated user roles let namespace `view` users read steps and `edit` and
`admin` users manage them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.build_scripts import run_build_script
from tests.chart.all_options import ALL_OPTIONS
from tests.chart.helm_cli import CHART, REPO, Helm

from .controlplane import ControlPlane, wait_for
from .crd_install import install_crd

pytestmark = pytest.mark.cluster

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_KINDS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}
FETCH_CRDS = REPO / "tools" / "fetch-prometheus-operator-crds.sh"
STEP = "parallelrunsteps.parallelrun.io"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class CrdFetchError(RuntimeError):
    pass


@pytest.fixture(scope="module")
def monitoring_crds(control_plane: ControlPlane) -> dict[str, Path]:
    """The prometheus-operator CRD files by kind, each installed and Established."""
    try:
        folder = run_build_script(FETCH_CRDS, 600, CrdFetchError)
    except CrdFetchError as exc:
        pytest.fail(f"prometheus-operator CRDs unavailable (needs Go and the module proxy): "
                    f"{exc}", pytrace=False)
    by_kind = {}
    # The files are named GROUP_PLURAL.yaml (PyYAML cannot read them: they hold YAML's `=`
    # value tag; kubectl can).
    for kind, plural in MONITORING_KINDS.items():
        path = folder / f"{MONITORING_GROUP}_{plural}.yaml"
        assert path.is_file(), f"{FETCH_CRDS.name} left no {path.name} in {folder}"
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        control_plane.kubectl("wait", "--for=condition=Established",
                              f"crd/{plural}.{MONITORING_GROUP}", "--timeout=60s", timeout=90)
        by_kind[kind] = path
    return by_kind


@pytest.fixture
def namespaces(control_plane: ControlPlane) -> Iterator[list[str]]:
    """Three fresh namespaces: the release's and two watched ones."""
    names = [unique("prs-system"), unique("team-a"), unique("team-b")]
    for name in names:
        control_plane.kubectl("create", "namespace", name)
    yield names
    control_plane.kubectl("delete", "namespace", "--wait=false", *names, check=False)


def render(helm: Helm, values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    return helm.template(values, "prs", namespace, include_crds=True)


def dry_run(plane: ControlPlane, docs: list[dict[str, Any]], path: Path) -> tuple[int, str]:
    path.write_text(yaml.safe_dump_all(docs))
    done = plane.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server",
                         "--validate=strict", "--field-manager=chart-validation", "-f", str(path),
                         check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_every_option_passes_strict_server_side_validation(
    control_plane: ControlPlane, helm: Helm, monitoring_crds: dict[str, Path],
    namespaces: list[str], tmp_path: Path, mode: str,
) -> None:
    release_namespace, *watched = namespaces
    values = {**ALL_OPTIONS, "watchNamespaces": watched if mode == "namespaced" else []}
    docs = render(helm, values, release_namespace)
    kinds = {doc["kind"] for doc in docs}
    assert {"NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule",
            "CustomResourceDefinition", "Deployment", "ClusterRole"} <= kinds, kinds
    code, report = dry_run(control_plane, docs, tmp_path / "chart.yaml")
    assert code == 0, f"the API server refused the rendered chart:\n{report}"
    for doc in docs:
        line = f"{doc['metadata']['name']} serverside-applied (server dry run)"
        assert line in report, (doc["kind"], report)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0)),
        ("ServiceMonitor", ("spec", "endpoints", 0)),
        ("PrometheusRule", ("spec", "groups", 0)),
        ("NetworkPolicy", ("spec",)),
    ],
)
def test_strict_validation_refuses_an_unknown_field(
    control_plane: ControlPlane, helm: Helm, monitoring_crds: dict[str, Path],
    namespaces: list[str], tmp_path: Path, kind: str, path: tuple[str | int, ...],
) -> None:
    """The check above can fail: one misspelt field in one object is refused by name."""
    docs = render(helm, ALL_OPTIONS | {"watchNamespaces": namespaces[1:]}, namespaces[0])
    target: Any = next(doc for doc in docs if doc["kind"] == kind)
    for step in path:
        target = target[step]
    target["intervall"] = "30s"
    code, report = dry_run(control_plane, docs, tmp_path / "chart.yaml")
    assert code != 0
    # Server-side apply's own wording for an unknown field under strict validation.
    refusal = next((line for line in report.splitlines() if line.startswith("Error from server")),
                   report)
    assert f"Kind={kind})" in refusal and ".intervall: field not declared in schema" in refusal, (
        report)


def test_artifact_hub_example_step_is_accepted_by_the_crd(
    control_plane: ControlPlane, namespaces: list[str], tmp_path: Path
) -> None:
    with control_plane.api_client() as api:
        install_crd(api)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    examples = yaml.safe_load(chart["annotations"]["artifacthub.io/crdsExamples"])
    path = tmp_path / "examples.yaml"
    path.write_text(yaml.safe_dump_all(examples))
    done = control_plane.kubectl("create", "--dry-run=server", "--validate=strict",
                                 "-n", namespaces[1], "-f", str(path), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("created (server dry run)") == len(examples), done.stdout


@pytest.fixture(scope="module")
def installed_chart(
    control_plane: ControlPlane, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, Any]]]:
    """The chart's default render (its aggregated user roles included), applied for real."""
    namespace = unique("prs-users")
    control_plane.kubectl("create", "namespace", namespace)
    with control_plane.api_client() as api:
        install_crd(api)
    docs = helm.template({}, unique("prs"), namespace)
    path = tmp_path_factory.mktemp("users") / "chart.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    control_plane.kubectl("apply", "--server-side", "--field-manager=chart-users", "-f",
                          str(path))
    yield docs
    for doc in docs:
        if "namespace" not in doc["metadata"]:
            control_plane.kubectl("delete", doc["kind"], doc["metadata"]["name"],
                                  "--ignore-not-found", "--wait=false", check=False)
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def can_i(plane: ControlPlane, user: str, namespace: str, verb: str,
          subresource: str = "") -> bool:
    extra = [f"--subresource={subresource}"] if subresource else []
    done = plane.kubectl("auth", "can-i", verb, STEP, f"--as={user}", "-n", namespace, *extra,
                         check=False)
    assert done.stdout.strip() in {"yes", "no"}, done.stdout + done.stderr
    return done.stdout.strip() == "yes"


READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")


@pytest.mark.usefixtures("installed_chart")
def test_namespace_users_get_steps_through_the_built_in_roles(
    control_plane: ControlPlane, namespaces: list[str]
) -> None:
    team, elsewhere = namespaces[1], namespaces[2]
    users = {role: unique(f"user-{role}") for role in ("view", "edit", "admin")}
    for role, user in users.items():
        control_plane.kubectl("create", "rolebinding", f"{role}-{user}", f"--clusterrole={role}",
                              f"--user={user}", "-n", team)

    # The controller-manager fills the built-in roles from the aggregated ones: wait for it.
    wait_for(lambda: can_i(control_plane, users["edit"], team, "create"), 60,
             "the edit role to include the chart's ParallelRunStep rules")
    expected = {
        "view": dict.fromkeys(READ, True) | dict.fromkeys(WRITE, False),
        "edit": dict.fromkeys(READ + WRITE, True),
        "admin": dict.fromkeys(READ + WRITE, True),
    }
    actual = {role: {verb: can_i(control_plane, user, team, verb) for verb in READ + WRITE}
              for role, user in users.items()}
    assert actual == expected
    for user in users.values():
        # The status is the operator's, and the grant ends at the namespace's border.
        assert not can_i(control_plane, user, team, "patch", subresource="status")
        assert not can_i(control_plane, user, elsewhere, "list")
