"""The Grafana dashboard's ConfigMap and the PrometheusRule: off by default, rendered when
enabled, and built on metrics the operator really exports (its registry, metrics.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from prs_operator.metrics import Metrics

from .helm_cli import CHART, Helm, by_kind, only
from .promql_names import exported_series, metric_names, unknown_metrics
from .test_chart import FULLNAME

DASHBOARD = CHART / "files" / "grafana-dashboard.json"
EXPORTED = exported_series(Metrics().registry)
MONITORING = {"grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True}}


@pytest.mark.parametrize(("expression", "names"), [
    ("up", {"up"}),
    ('max(up{namespace="a", job="b"})', {"up"}),
    ('sum by (phase) (rate(x_total{job="j"}[$__rate_interval]))', {"x_total"}),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    ('absent(up{job="a"} == 1)', {"up"}),
    ("a / on (pod) group_left (node) b offset 1h", {"a", "b"}),
    ('sum(x{phase=~"Pending|Planning"}) > 0 or vector(0)', {"x"}),
    ('label_values(m_count{namespace="$namespace"}, job)', {"m_count"}),
    ("rate(a[5m:1m]) and bool b unless c", {"a", "b", "c"}),
    ("process_cpu_seconds_total", {"process_cpu_seconds_total"}),
], ids=["bare", "matchers", "by-clause", "quantile", "absent", "on-group-offset", "regex",
        "label-values", "subquery-keywords", "colons-none"])
def test_metric_names_of_an_expression(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names


def test_exported_series_follow_the_metric_types() -> None:
    assert {"parallelrunstep_steps", "parallelrunstep_steps_finished_total",
            "parallelrunstep_reconcile_duration_seconds_bucket",
            "process_resident_memory_bytes"} <= EXPORTED
    assert "parallelrunstep_steps_total" not in EXPORTED  # a gauge has no _total
    assert unknown_metrics(["rate(parallelrunstep_nope_total[5m])"], EXPORTED) == {
        "rate(parallelrunstep_nope_total[5m])": {"parallelrunstep_nope_total"}}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    targets = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    variables = [v["query"]["query"] for v in dashboard["templating"]["list"]
                 if v["type"] == "query"]
    return targets + variables


def test_the_dashboard_is_valid_json_on_real_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= 10
    assert unknown_metrics(expressions, EXPORTED) == {}
    used = set().union(*(metric_names(e) for e in expressions))
    # Every family of the operator's own shows somewhere (a new one is not forgotten).
    own = {n.removesuffix("_bucket") for n in EXPORTED if n.startswith("parallelrunstep_")}
    shown = {n.removesuffix("_bucket").removesuffix("_count") for n in used}
    assert {n for n in own if not n.endswith(("_created", "_sum", "_count"))} <= shown
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            if "namespace=" in target["expr"] or "{" in target["expr"]:
                assert 'namespace="$namespace"' in target["expr"], target["expr"]


def test_monitoring_is_off_by_default(helm: Helm) -> None:
    docs = helm.template({})
    assert by_kind(docs, "PrometheusRule") == [] and by_kind(docs, "ConfigMap") == []


def test_the_dashboard_configmap_carries_the_file_under_the_sidecars_label(helm: Helm) -> None:
    config_map = only(helm.template(MONITORING), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "prs-system"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    [body] = config_map["data"].values()
    assert json.loads(body) == json.loads(DASHBOARD.read_text())

    moved = only(helm.template({"grafanaDashboard": {
        "enabled": True, "label": "dashboards.example.com/grafana", "labelValue": "ops",
        "namespace": "monitoring", "annotations": {"grafana_folder": "Batch"}}}), "ConfigMap")
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["labels"]["dashboards.example.com/grafana"] == "ops"
    assert "grafana_dashboard" not in moved["metadata"]["labels"]
    assert moved["metadata"]["annotations"] == {"grafana_folder": "Batch"}


def rules_of(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_alerts_use_real_metrics_of_this_release(helm: Helm) -> None:
    rule = only(helm.template(MONITORING), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {r["alert"]: r for r in rules_of(rule)}
    assert set(alerts) == {
        "ParallelRunStepOperatorDown", "ParallelRunStepReconcileErrors", "ParallelRunStepFailed",
        "ParallelRunStepStuckPending", "ParallelRunStepProgressReportsRejected"}
    assert unknown_metrics([r["expr"] for r in alerts.values()], EXPORTED) == {}
    for name, alert in alerts.items():
        assert f'namespace="prs-system", job="{FULLNAME}"' in alert["expr"], name
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
    assert alerts["ParallelRunStepOperatorDown"]["for"] == "5m"
    assert alerts["ParallelRunStepStuckPending"]["for"] == "30m"
    # Alertmanager's template, not Helm's: the value is filled in when the alert fires.
    assert "{{ $value | humanize }}" in alerts["ParallelRunStepFailed"]["annotations"][
        "description"]


def test_alert_settings_reach_every_alert(helm: Helm) -> None:
    rule = only(helm.template({"prometheusRule": {
        "enabled": True, "labels": {"release": "kps"}, "alertLabels": {"team": "ml"},
        "pendingFor": "2h"}}), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert all(r["labels"]["team"] == "ml" for r in rules_of(rule))
    [stuck] = [r for r in rules_of(rule) if r["alert"] == "ParallelRunStepStuckPending"]
    assert stuck["for"] == "2h"


@pytest.mark.parametrize(("values", "message"), [
    ({"prometheusRule": {"enabled": True, "pendingFor": "soon"}}, "/prometheusRule/pendingFor"),
    ({"prometheusRule": {"enabled": True, "severity": "high"}}, "'severity' not allowed"),
    ({"grafanaDashboard": {"enabled": True, "label": "bad label"}}, "/grafanaDashboard/label"),
    ({"grafanaDashboard": {"enabled": "yes"}}, "/grafanaDashboard/enabled"),
], ids=["duration", "unknown-key", "label-key", "enabled-string"])
def test_schema_rejects_bad_monitoring_values(helm: Helm, values: dict[str, Any],
                                              message: str) -> None:
    rendered = helm.template_run(values)
    assert rendered.returncode != 0, rendered.stdout
    assert message in rendered.stderr


def test_lint_strict_is_clean_with_monitoring(helm: Helm) -> None:
    done = helm.lint(MONITORING)
    assert done.returncode == 0 and "[WARNING]" not in done.stdout, done.stdout + done.stderr


def rules_file(helm: Helm, folder: Path) -> Path:
    rule = only(helm.template(MONITORING), "PrometheusRule")
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_promtool_checks_the_rules(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(promtool), "check", "rules", str(rules_file(helm, tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout + done.stderr


SERIES = f'namespace="prs-system", job="{FULLNAME}"'


def annotations_of(helm: Helm, alert: str, value: str) -> dict[str, str]:
    """The alert's annotations as Prometheus fills them in for VALUE."""
    [rule] = [r for r in rules_of(only(helm.template(MONITORING), "PrometheusRule"))
              if r["alert"] == alert]
    return {key: text.replace("{{ $value }}", value)
            for key, text in rule["annotations"].items()}


def test_promtool_fires_the_alerts_when_they_should(
        helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """`promtool test rules` on series over time: each alert fires after its `for` and
    not before; another release's series (other job) never fire this release's alerts."""
    rules = rules_file(helm, tmp_path)
    other = 'namespace="prs-system", job="other-operator"'
    tests = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            # up for 10 minutes, then gone for 20 (the operator's pod went away)
            {"series": f"up{{{SERIES}}}", "values": "1x9 0x20"},
            {"series": f"up{{{other}}}", "values": "0x30"},
            # one step Pending from minute 5 on
            {"series": f'parallelrunstep_steps{{{SERIES}, phase="Pending"}}',
             "values": "0x4 1x60"},
            {"series": f'parallelrunstep_progress_reports_total{{{SERIES}, result="rejected"}}',
             "values": "0x10 0+3x30"},
            {"series": f'parallelrunstep_steps_finished_total{{{SERIES}, phase="Failed"}}',
             "values": "0x20 1x20"},
            {"series": f"parallelrunstep_reconcile_errors_total{{{SERIES}}}",
             "values": "0x5 0+6x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "12m", "alertname": "ParallelRunStepOperatorDown", "exp_alerts": []},
            {"eval_time": "17m", "alertname": "ParallelRunStepOperatorDown", "exp_alerts": [
                {"exp_labels": {"severity": "critical"},
                 "exp_annotations": annotations_of(helm, "ParallelRunStepOperatorDown", "")}]},
            {"eval_time": "30m", "alertname": "ParallelRunStepStuckPending", "exp_alerts": []},
            {"eval_time": "36m", "alertname": "ParallelRunStepStuckPending", "exp_alerts": [
                {"exp_labels": {"severity": "warning"},
                 "exp_annotations": annotations_of(helm, "ParallelRunStepStuckPending", "1")}]},
            {"eval_time": "15m", "alertname": "ParallelRunStepProgressReportsRejected",
             "exp_alerts": []},
            {"eval_time": "25m", "alertname": "ParallelRunStepProgressReportsRejected",
             "exp_alerts": [{"exp_labels": {"severity": "warning"}, "exp_annotations":
                             annotations_of(helm, "ParallelRunStepProgressReportsRejected",
                                            "")}]},
        ],
        "promql_expr_test": [
            # the failed step shows within 15 minutes of finishing, then no more
            {"expr": expression_of(helm, "ParallelRunStepFailed"), "eval_time": "19m",
             "exp_samples": []},
            {"expr": expression_of(helm, "ParallelRunStepFailed"), "eval_time": "25m",
             "exp_samples": [{"labels": "{}", "value": 1}]},
            {"expr": expression_of(helm, "ParallelRunStepFailed"), "eval_time": "40m",
             "exp_samples": []},
            {"expr": expression_of(helm, "ParallelRunStepReconcileErrors"),
             "eval_time": "4m", "exp_samples": []},
            {"expr": expression_of(helm, "ParallelRunStepReconcileErrors"),
             "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": 1}]},
        ],
    }]}
    tests_path = tmp_path / "rules_test.yaml"
    tests_path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([str(promtool), "test", "rules", str(tests_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def expression_of(helm: Helm, alert: str) -> str:
    """1 while the alert's condition holds (its expression has a sample), else no sample:
    the values themselves are extrapolated by increase() and rate()."""
    [rule] = [r for r in rules_of(only(helm.template(MONITORING), "PrometheusRule"))
              if r["alert"] == alert]
    return f"({rule['expr']}) > bool 0"
