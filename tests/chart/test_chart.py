"""helm/parallelrun-operator linted and rendered by the real helm CLI: what each mode
renders, how the Deployment is wired, and the schema rejecting bad values."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helm_cli import CHART, REPO, Helm, by_kind, only
from .rbac_rules import grants_of_rules, is_cluster_scoped, load_operator_rules

NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
FULLNAME = "prs-parallelrun-operator"  # release "prs"


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_lint_strict_is_clean(helm: Helm, values: dict[str, Any]) -> None:
    done = helm.lint(values)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "[WARNING]" not in report and "[ERROR]" not in report, report
    assert "1 chart(s) linted, 0 chart(s) failed" in report


def test_cluster_wide_renders_one_cluster_role_with_every_rule(helm: Helm) -> None:
    docs = helm.template({})
    assert Counter(doc["kind"] for doc in docs) == Counter(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment",
         # the leader-election Lease's and the progress key Secret's, in the release namespace
         "Role", "RoleBinding", "Role", "RoleBinding",
         # the users' view and edit rules, aggregated into the built-in roles
         "ClusterRole", "ClusterRole"]
    )
    assert_leader_election_only(docs)
    role = only(without_user_roles(docs), "ClusterRole")
    assert role["rules"] == load_operator_rules()
    binding = only(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "prs-system"}
    ]
    assert env_of(only(docs, "Deployment"))["PRS_NAMESPACES"] == ""


def without_user_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DOCS without the ClusterRoles aggregated into the built-in user roles (rbac.
    aggregateToDefaultRoles, tests/chart/test_chart_options.py): the operator's own RBAC."""
    return [doc for doc in docs if not any(
        key.startswith("rbac.authorization.k8s.io/aggregate-to-")
        for key in (doc["metadata"].get("labels") or {}))]


def assert_leader_election_only(docs: list[dict[str, Any]]) -> None:
    """The release namespace's Role grants the operator's own Lease and nothing else."""
    [role] = [doc for doc in by_kind(docs, "Role")
              if doc["metadata"]["name"] == f"{FULLNAME}-leader-election"]
    assert role["metadata"]["namespace"] == "prs-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": [FULLNAME], "verbs": ["get", "update"]}]
    env = env_of(only(docs, "Deployment"))
    assert (env["PRS_LEASE_NAMESPACE"], env["PRS_LEASE_NAME"]) == ("prs-system", FULLNAME)
    [binding] = [doc for doc in by_kind(docs, "RoleBinding")
                 if doc["metadata"]["name"] == f"{FULLNAME}-leader-election"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "prs-system"}]


def test_namespaced_mode_splits_the_rules(helm: Helm) -> None:
    docs = helm.template(NAMESPACED)
    kinds = Counter(doc["kind"] for doc in docs)
    assert kinds["Role"] == 4 and kinds["RoleBinding"] == 4 and kinds["ClusterRole"] == 1 + 2
    assert_leader_election_only(docs)
    docs = [doc for doc in without_user_roles(docs)
            if not doc["metadata"]["name"].endswith(("-leader-election", "-progress-key"))]
    needed = grants_of_rules(load_operator_rules())

    cluster_grants = grants_of_rules(only(docs, "ClusterRole")["rules"])
    # Reading the CRD and watching namespaces stay cluster-wide (kopf does both).
    assert cluster_grants == {
        g for g in needed if is_cluster_scoped(g)
    }
    roles = by_kind(docs, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    for role in roles:
        assert grants_of_rules(role["rules"]) == {g for g in needed if not is_cluster_scoped(g)}
    for binding in by_kind(docs, "RoleBinding"):
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME
        }
        assert binding["subjects"][0]["namespace"] == "prs-system"
    assert env_of(only(docs, "Deployment"))["PRS_NAMESPACES"] == "team-a,team-b"


def test_a_rule_mixing_scopes_cannot_be_split(helm: Helm, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "files" / "operator-rules.yaml").write_text(yaml.safe_dump([
        {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["list"]},
    ]))
    # Refused in both modes, so that the default install already catches it.
    for values in ({}, NAMESPACED):
        done = helm.template_run(values, chart=chart)
        assert done.returncode != 0
        assert "mixes cluster-scoped and namespaced resources: [namespaces pods]" in done.stderr


def test_crds_are_the_repository_crd(helm: Helm) -> None:
    docs = helm.template({}, include_crds=True)
    crd = only(docs, "CustomResourceDefinition")
    assert crd == yaml.safe_load((REPO / "crds" / "parallelrunsteps.yaml").read_text())


def test_deployment_wiring(helm: Helm) -> None:
    docs = helm.template({})
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    env = env_of(deployment)

    assert container["image"] == "ghcr.io/parallelrun/prs-operator:0.1.0"
    assert env["PRS_RUNNER_IMAGE"] == "ghcr.io/parallelrun/prs-runner:0.1.0"
    assert env["PRS_HTTP_PORT"] == "8080"
    assert env["PRS_LOG_LEVEL"] == "INFO"
    assert env["PRS_PROGRESS_URL"] == f"http://{FULLNAME}.prs-system.svc:8080/v1/progress"
    assert spec["serviceAccountName"] == only(docs, "ServiceAccount")["metadata"]["name"]
    assert spec["automountServiceAccountToken"] is True

    # The key file is the `key` item of the rendered Secret, mounted read-only.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    key_mount = next(
        m for m in mounts.values() if env["PRS_PROGRESS_KEY_FILE"].startswith(m["mountPath"] + "/")
    )
    assert key_mount["readOnly"] is True
    secret_volume = volumes[key_mount["name"]]["secret"]
    # The operator creates the Secret (test_chart_progress_key.py): the pod may start first.
    assert secret_volume["secretName"] == env["PRS_PROGRESS_KEY_SECRET"] == (
        f"{FULLNAME}-progress-key")
    assert secret_volume["optional"] is True
    key_path = env["PRS_PROGRESS_KEY_FILE"].removeprefix(key_mount["mountPath"] + "/")
    assert {"key": "key", "path": key_path} in secret_volume["items"]

    # The read-only root filesystem needs a writable /tmp.
    assert "emptyDir" in volumes[mounts_by_path(container)["/tmp"]["name"]]

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == 10001
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"] and container["resources"]["limits"]

    service = only(docs, "Service")
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == selector
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]


def test_service_port_moves_the_listener_and_the_progress_url(helm: Helm) -> None:
    docs = helm.template({"service": {"port": 9090}}, release="batch", namespace="ml")
    deployment = only(docs, "Deployment")
    env = env_of(deployment)
    assert env["PRS_HTTP_PORT"] == "9090"
    assert env["PRS_PROGRESS_URL"] == (
        "http://batch-parallelrun-operator.ml.svc:9090/v1/progress"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 9090
    assert only(docs, "Service")["spec"]["ports"][0]["port"] == 9090


def test_image_tags_and_log_level(helm: Helm) -> None:
    values = {
        "image": {"repository": "registry.local/op", "tag": "dev", "pullPolicy": "Never"},
        "runnerImage": {"repository": "registry.local/runner", "tag": "dev2"},
        "logLevel": "DEBUG",
    }
    deployment = only(helm.template(values), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.local/op:dev", "Never")
    assert env_of(deployment)["PRS_RUNNER_IMAGE"] == "registry.local/runner:dev2"
    assert env_of(deployment)["PRS_LOG_LEVEL"] == "DEBUG"


def test_existing_secret_replaces_the_generated_one(helm: Helm) -> None:
    docs = helm.template({"progressKey": {"existingSecret": "my-key"}})
    assert by_kind(docs, "Secret") == []
    volumes = only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secrets = [v["secret"] for v in volumes if "secret" in v]
    assert [(s["secretName"], s["items"]) for s in secrets] == [
        ("my-key", [{"key": "key", "path": "key"}])
    ]


def test_service_monitor_is_optional(helm: Helm) -> None:
    assert by_kind(helm.template({}), "ServiceMonitor") == []
    docs = helm.template({"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}})
    monitor = only(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"] == only(docs, "Service")["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0] | {"port": "http", "path": "/metrics"} == (
        monitor["spec"]["endpoints"][0]
    )


def test_without_rbac_or_service_account(helm: Helm) -> None:
    docs = helm.template({"rbac": {"create": False}, "serviceAccount": {"create": False,
                                                                         "name": "ops"}})
    kinds = {doc["kind"] for doc in docs}
    assert kinds.isdisjoint({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                             "ServiceAccount"})
    assert only(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    done = helm.template_run({"serviceAccount": {"create": False, "name": ""}})
    assert done.returncode != 0 and "serviceAccount.name" in done.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image": {"repository": "op", "tag": 5, "pullPolicy": "Always"}}, "/image/tag"),
        ({"imag": {"tag": "x"}}, "'imag' not allowed"),
        ({"image": {"repository": "op", "tags": "x", "pullPolicy": "Always"}}, "'tags'"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
        ({"logLevel": "TRACE"}, "/logLevel"),
        ({"service": {"type": "ClusterIP", "port": 0}}, "/service/port"),
        ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    ],
    ids=["tag-number", "unknown-key", "unknown-nested-key", "namespace-name", "namespaces-string",
         "log-level", "port-zero", "enabled-string", "memory-quantity"],
)
def test_schema_rejects_bad_values(helm: Helm, values: dict[str, Any], message: str) -> None:
    rendered = helm.template_run(values)
    assert rendered.returncode != 0, rendered.stdout
    assert message in rendered.stderr
    linted = helm.lint(values)
    assert linted.returncode != 0 and message in linted.stdout + linted.stderr


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def mounts_by_path(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container["volumeMounts"]}
