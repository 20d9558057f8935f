"""The chart's optional parts rendered by the real helm CLI: each is absent by default and
renders as expected when enabled (aggregated user roles, NetworkPolicy, PodDisruptionBudget,
topology spread, extra env and volumes), the install notes' warnings, the pod template's config
checksum, and `helm lint --strict` with every option on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .all_options import ALL_OPTIONS, WATCHED
from .helm_cli import CHART, Helm, by_kind, only

FULLNAME = "prs-parallelrun-operator"  # release "prs"
CLUSTER_NAME = f"{FULLNAME}-prs-system"  # cluster-scoped names carry the namespace
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
OPTIONAL_KINDS = {"NetworkPolicy", "PodDisruptionBudget"}


def test_lint_strict_with_every_option_on(helm: Helm) -> None:
    done = helm.lint(ALL_OPTIONS)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "[WARNING]" not in report and "[ERROR]" not in report, report


def test_optional_objects_are_absent_by_default(helm: Helm) -> None:
    docs = helm.template({})
    assert OPTIONAL_KINDS.isdisjoint(doc["kind"] for doc in docs)
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in spec
    assert [v["name"] for v in spec["volumes"]] == ["tmp", "progress-key"]
    (container,) = spec["containers"]
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp", "progress-key"]
    assert all(e["name"].startswith("PRS_") for e in container["env"])


def aggregated_roles(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in by_kind(docs, "ClusterRole")
            if any(key.startswith(AGGREGATE) for key in doc["metadata"]["labels"])}


@pytest.mark.parametrize(
    ("suffix", "aggregates_to", "verbs"),
    [
        ("view", {"view", "edit", "admin"}, ["get", "list", "watch"]),
        ("edit", {"edit", "admin"}, ["create", "update", "patch", "delete", "deletecollection"]),
    ],
)
def test_user_roles_aggregate_into_the_built_in_roles(
    helm: Helm, suffix: str, aggregates_to: set[str], verbs: list[str]
) -> None:
    role = aggregated_roles(helm.template({}))[f"{CLUSTER_NAME}-{suffix}"]
    labels = role["metadata"]["labels"]
    assert {key.removeprefix(AGGREGATE) for key in labels if key.startswith(AGGREGATE)} == (
        aggregates_to)
    assert all(labels[f"{AGGREGATE}{name}"] == "true" for name in aggregates_to)
    # The steps only: their status is the operator's to write.
    assert role["rules"] == [
        {"apiGroups": ["parallelrun.io"], "resources": ["parallelrunsteps"], "verbs": verbs}]


def test_user_roles_can_be_turned_off(helm: Helm) -> None:
    assert len(aggregated_roles(helm.template({}))) == 2
    off = helm.template({"rbac": {"create": True, "aggregateToDefaultRoles": False}})
    assert aggregated_roles(off) == {}
    # rbac.create: false means no RBAC object at all (the admin grants it).
    assert aggregated_roles(helm.template({"rbac": {"create": False}})) == {}


def network_policy(helm: Helm, values: dict[str, Any]) -> dict[str, Any]:
    docs = helm.template({"networkPolicy": {"enabled": True}, **values})
    policy = only(docs, "NetworkPolicy")
    selector = only(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["podSelector"] == {"matchLabels": selector}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    return dict(policy["spec"])


RUNNER_PODS = {"matchLabels": {"app.kubernetes.io/managed-by": "parallelrun-operator"}}
DNS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def test_network_policy_cluster_wide(helm: Helm) -> None:
    spec = network_policy(helm, {"service": {"type": "ClusterIP", "port": 9090}})
    # Runner pods of any namespace reach the operator's port, and nothing else does.
    assert spec["ingress"] == [{"ports": [{"port": 9090, "protocol": "TCP"}],
                                "from": [{"podSelector": RUNNER_PODS, "namespaceSelector": {}}]}]
    assert spec["egress"] == [
        {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]},
        {"ports": DNS_PORTS, "to": [DNS_PEER]},
    ]


def test_network_policy_namespaced_with_scraper_and_api_server_cidrs(helm: Helm) -> None:
    scraper = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    spec = network_policy(helm, {
        "watchNamespaces": WATCHED,
        "networkPolicy": {"enabled": True, "metricsFrom": [scraper],
                          "apiServerCIDRs": ["10.0.0.1/32"], "apiServerPorts": [6443]},
    })
    watched = {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": WATCHED}]}
    assert spec["ingress"][0]["from"] == [
        {"podSelector": RUNNER_PODS, "namespaceSelector": watched}, scraper]
    assert spec["egress"][0] == {"ports": [{"port": 6443, "protocol": "TCP"}],
                                 "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({"enabled": True}, {"maxUnavailable": 1}),
        ({"enabled": True, "maxUnavailable": "50%"}, {"maxUnavailable": "50%"}),
        ({"enabled": True, "minAvailable": 1}, {"minAvailable": 1}),
        ({"enabled": True, "minAvailable": 0}, {"minAvailable": 0}),
        ({"enabled": True, "maxUnavailable": 0}, {"maxUnavailable": 0}),
        ({"enabled": True, "maxUnavailable": None}, {"maxUnavailable": 1}),
    ],
    ids=["default", "percentage", "min-available", "min-available-zero", "max-unavailable-zero",
         "max-unavailable-null"],
)
def test_pod_disruption_budget(
    helm: Helm, budget: dict[str, Any], expected: dict[str, Any]
) -> None:
    docs = helm.template({"podDisruptionBudget": budget})
    spec = only(docs, "PodDisruptionBudget")["spec"]
    selector = spec.pop("selector")
    assert spec == expected
    assert selector == only(docs, "Deployment")["spec"]["selector"]


def test_pod_disruption_budget_set_to_null_on_the_command_line_falls_back_to_one(
    helm: Helm,
) -> None:
    done = helm.template_run({}, "prs", "prs-system",
                             "--set", "podDisruptionBudget.enabled=true",
                             "--set", "podDisruptionBudget.maxUnavailable=null")
    assert done.returncode == 0, done.stderr
    (budget,) = [d for d in yaml.safe_load_all(done.stdout)
                 if d and d["kind"] == "PodDisruptionBudget"]
    assert {k: v for k, v in budget["spec"].items() if k != "selector"} == {"maxUnavailable": 1}


def test_topology_spread_gets_the_pods_selector_unless_given_one(helm: Helm) -> None:
    own = {"matchLabels": {"tier": "ops"}}
    zone = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway"}
    host = {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": own}
    deployment = only(helm.template({"topologySpreadConstraints": [zone, host]}), "Deployment")
    constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraints == [zone | {"labelSelector": deployment["spec"]["selector"]}, host]


def test_extra_env_and_volumes(helm: Helm) -> None:
    deployment = only(helm.template(ALL_OPTIONS), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["env"][-1] == ALL_OPTIONS["extraEnv"][0]
    assert sum(e["name"].startswith("PRS_") for e in container["env"]) >= 6  # kept
    assert container["volumeMounts"][-1] == ALL_OPTIONS["extraVolumeMounts"][0]
    assert spec["volumes"][-1] == ALL_OPTIONS["extraVolumes"][0]
    assert [v["name"] for v in spec["volumes"][:2]] == ["tmp", "progress-key"]


def checksum(docs: list[dict[str, Any]]) -> str:
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    value = annotations["checksum/config"]
    assert len(value) == 64 and int(value, 16) >= 0, value
    return str(value)


def test_config_checksum_follows_the_operators_rbac(helm: Helm, tmp_path: Path) -> None:
    base = checksum(helm.template({}))
    assert checksum(helm.template({})) == base, "the checksum must not change by itself"
    # Only what the pod template does not already carry changes it.
    assert checksum(helm.template({"logLevel": "DEBUG"})) == base
    assert checksum(helm.template({"watchNamespaces": WATCHED})) != base
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    rules_file = chart / "files" / "operator-rules.yaml"
    rules = yaml.safe_load(rules_file.read_text())
    rules_file.write_text(yaml.safe_dump([*rules, {"apiGroups": [""], "resources": ["configmaps"],
                                                   "verbs": ["get"]}]))
    done = helm.template_run({}, chart=chart)
    assert done.returncode == 0, done.stderr
    assert checksum([d for d in yaml.safe_load_all(done.stdout) if d]) != base


def test_pod_annotations_keep_the_checksum(helm: Helm) -> None:
    docs = helm.template({"podAnnotations": {"example.com/owner": "ml"}})
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "ml"
    assert annotations["checksum/config"] == checksum(helm.template({}))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"networkPolicy": {"enabled": True, "ports": [1]}}, "'ports' not allowed"),
        ({"networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.0.0.1"]}},
         "/networkPolicy/apiServerCIDRs/0"),
        ({"networkPolicy": {"enabled": True, "apiServerPorts": []}},
         "/networkPolicy/apiServerPorts"),
        ({"podDisruptionBudget": {"enabled": True, "maxUnavailable": "most"}},
         "/podDisruptionBudget/maxUnavailable"),
        ({"extraVolumeMounts": [{"name": "ca"}]}, "/extraVolumeMounts/0"),
        ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "/topologySpreadConstraints/0"),
        ({"rbac": {"create": True, "aggregateToDefaultRoles": "yes"}},
         "/rbac/aggregateToDefaultRoles"),
    ],
    ids=["policy-unknown-key", "cidr-without-prefix", "no-api-server-port", "budget-word",
         "mount-without-path", "spread-without-key", "aggregate-string"],
)
def test_schema_rejects_bad_option_values(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    done = helm.template_run(values)
    assert done.returncode != 0, done.stdout
    assert message in done.stderr


@pytest.mark.parametrize("name", ["PRS_LOG_LEVEL", "PRS_NAMESPACES"])
def test_extra_env_refuses_the_charts_own_settings_in_one_line(helm: Helm, name: str) -> None:
    done = helm.template_run({"extraEnv": [{"name": "HTTPS_PROXY", "value": "x"},
                                           {"name": name, "value": "DEBUG"}]})
    assert done.returncode != 0, done.stdout
    (line,) = [line for line in done.stderr.splitlines() if "extraEnv" in line]
    assert line.endswith(
        f"extraEnv: {name}: PRS_* variables are the chart's own settings; set them through "
        "the chart's values (logLevel, watchNamespaces, runnerImage, service.port, progressKey)"
    ), done.stderr
    assert "'not' failed" not in done.stderr


SCRAPES_BLOCKED = "WARNING: Prometheus cannot scrape the operator"
SCRAPER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


@pytest.mark.parametrize(
    ("values", "warned"),
    [
        ({"networkPolicy": {"enabled": True}, "serviceMonitor": {"enabled": True}}, True),
        ({"networkPolicy": {"enabled": True, "metricsFrom": [SCRAPER]},
          "serviceMonitor": {"enabled": True}}, False),
        ({"networkPolicy": {"enabled": True}}, False),
        ({"serviceMonitor": {"enabled": True}}, False),
    ],
    ids=["policy-and-monitor-without-scraper", "scraper-listed", "no-monitor", "no-policy"],
)
def test_notes_warn_when_the_network_policy_blocks_the_service_monitor(
    helm: Helm, values: dict[str, Any], warned: bool
) -> None:
    notes = helm.notes(values)
    assert notes.startswith("The ParallelRunStep operator is installed as"), notes
    assert (SCRAPES_BLOCKED in notes) == warned, notes
    if warned:
        assert "networkPolicy.metricsFrom is empty" in notes
        assert "--set-json 'networkPolicy.metricsFrom=[" in notes
