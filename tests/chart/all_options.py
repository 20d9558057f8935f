"""Values that switch on every optional feature of the chart at once: `helm lint --strict`
(tests/chart) and the API server's strict validation (tests/cluster) see every template."""

from __future__ import annotations

from typing import Any

WATCHED = ["team-a", "team-b"]

ALL_OPTIONS: dict[str, Any] = {
    "watchNamespaces": WATCHED,
    "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
    "prometheusRule": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
    "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}],
        "apiServerCIDRs": ["10.96.0.1/32", "192.168.0.0/24"],
    },
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}],
    "extraVolumes": [{"name": "ca-bundle", "configMap": {"name": "ca-bundle"}}],
    "extraVolumeMounts": [{"name": "ca-bundle", "mountPath": "/etc/ssl/extra",
                           "readOnly": True}],
    "podAnnotations": {"example.com/owner": "ml-platform"},
    "podLabels": {"example.com/team": "ml"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops",
                     "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}}]}},
    "imagePullSecrets": [{"name": "registry-key"}],
    "serviceAccount": {"create": True, "name": "", "annotations": {"example.com/role": "prs"}},
}
