"""`helm test`'s hooks: a Pod in the operator image that runs one tiny step, its code and input
in a ConfigMap, a ServiceAccount allowed only that, PSS-restricted, and a claim for the
output unless one is named. Also the test script's pure parts (files/helm-test/)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from .helm_cli import CHART, Helm, by_kind, only
from .test_chart import FULLNAME

TEST_NAME = f"{FULLNAME}-test"
HOOK = {"helm.sh/hook": "test",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}


def load_script(name: str) -> ModuleType:
    path = CHART / "files" / "helm-test" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"chart_helm_test_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def hooks(helm: Helm, values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    docs = helm.template(values or {}, include_tests=True, **kwargs)
    return [d for d in docs
            if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]


def env_of_pod(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_install_renders_no_test_object(helm: Helm) -> None:
    assert hooks(helm) and not [
        d for d in helm.template({}) if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    assert hooks(helm, {"helmTest": {"enabled": False}}) == []


def test_the_test_pod_runs_the_operator_image_under_restricted_pod_security(
        helm: Helm) -> None:
    docs = hooks(helm)
    assert sorted(d["kind"] for d in docs) == sorted(
        ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "Pod"])
    for doc in docs:
        assert doc["metadata"]["annotations"].items() >= HOOK.items(), doc["kind"]
        assert doc["metadata"]["namespace"] == "prs-system"  # cluster-wide: the release's
    pod = only(docs, "Pod")
    weights = {d["kind"]: int(d["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
               for d in docs}
    assert all(weights[kind] < weights["Pod"] for kind in weights if kind != "Pod")
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "ghcr.io/parallelrun/prs-operator:0.1.0"
    assert container["command"] == ["python", "/helm-test/check_step.py"]
    assert spec["restartPolicy"] == "Never" and spec["serviceAccountName"] == TEST_NAME
    # Pod Security Standards, restricted profile.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    kinds = {next(k for k in v if k != "name") for v in spec["volumes"]}
    assert kinds <= {"configMap", "emptyDir"}
    env = env_of_pod(pod)
    assert (env["STEP_NAMESPACE"], env["STEP_NAME"], env["CODE_CONFIG_MAP"]) == (
        "prs-system", TEST_NAME, TEST_NAME)
    assert env["OUTPUT_URI"] == f"pvc://{TEST_NAME}/{TEST_NAME}"
    assert only(docs, "PersistentVolumeClaim")["metadata"]["name"] == TEST_NAME


def test_the_test_account_may_only_create_and_follow_its_own_step(helm: Helm) -> None:
    docs = hooks(helm)
    role = only(docs, "Role")
    assert role["rules"] == [
        {"apiGroups": ["parallelrun.io"], "resources": ["parallelrunsteps"],
         "verbs": ["create"]},
        {"apiGroups": ["parallelrun.io"], "resources": ["parallelrunsteps"],
         "resourceNames": [TEST_NAME], "verbs": ["get", "delete"]}]
    binding = only(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": TEST_NAME, "namespace": "prs-system"}]


def test_the_configmap_carries_the_scripts_and_as_many_items_as_the_pod_expects(
        helm: Helm) -> None:
    docs = hooks(helm)
    data = only(docs, "ConfigMap")["data"]
    for script in ("score.py", "check_step.py"):
        assert data[script] == (CHART / "files" / "helm-test" / script).read_text().rstrip("\n")
    items = sorted(key for key in data if key.startswith("item-"))
    assert items == [f"item-{n}.txt" for n in range(1, 6)]
    assert env_of_pod(only(docs, "Pod"))["ITEMS"] == str(len(items))


def test_a_named_claim_namespace_and_path(helm: Helm) -> None:
    docs = hooks(helm, {"watchNamespaces": ["team-a"], "helmTest": {
        "enabled": True, "claim": "data", "path": "out/", "timeoutSeconds": 600}})
    assert by_kind(docs, "PersistentVolumeClaim") == []
    pod = only(docs, "Pod")
    assert pod["metadata"]["namespace"] == "team-a"  # the first watched namespace
    env = env_of_pod(pod)
    assert env["OUTPUT_URI"] == f"pvc://data/out/{TEST_NAME}"
    assert env["TIMEOUT_SECONDS"] == "600"
    moved = hooks(helm, {"helmTest": {"enabled": True, "namespace": "batch",
                                      "storageClassName": "fast"}})
    assert {d["metadata"]["namespace"] for d in moved} == {"batch"}
    assert only(moved, "PersistentVolumeClaim")["spec"]["storageClassName"] == "fast"


@pytest.mark.parametrize(("values", "message"), [
    ({"helmTest": {"enabled": True, "path": "../up"}}, "/helmTest/path"),
    ({"helmTest": {"enabled": True, "timeoutSeconds": 5}}, "/helmTest/timeoutSeconds"),
    ({"helmTest": {"enabled": True, "claim": "Data"}}, "/helmTest/claim"),
], ids=["path-up", "timeout-short", "claim-name"])
def test_schema_rejects_bad_test_values(helm: Helm, values: dict[str, Any],
                                        message: str) -> None:
    rendered = helm.template_run(values)
    assert rendered.returncode != 0 and message in rendered.stderr, rendered.stderr


ENV = {"STEP_NAMESPACE": "ns", "STEP_NAME": "t", "CODE_CONFIG_MAP": "cm",
       "INPUT_MOUNT": "/in", "OUTPUT_URI": "pvc://data/out/t/"}


def test_the_test_step_reads_the_configmap_and_writes_a_folder_of_its_own() -> None:
    check = load_script("check_step")
    step = check.step_manifest(ENV, "run1")
    spec = step["spec"]
    assert (step["metadata"]["name"], step["metadata"]["namespace"]) == ("t", "ns")
    assert spec["code"] == {"configMap": "cm", "entryScript": "score.py"}
    assert spec["input"] == {"type": "files", "uri": "/in", "glob": "item-*.txt"}
    assert spec["output"] == {"uri": "pvc://data/out/t/run1"}
    [volume] = spec["podTemplate"]["volumes"]
    [mount] = spec["podTemplate"]["volumeMounts"]
    assert volume["configMap"] == {"name": "cm"} and mount["name"] == volume["name"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/in", True)


def condition(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status}


@pytest.mark.parametrize(("status", "expected"), [
    ({}, None),
    ({"conditions": [condition("Complete", "False"), condition("Failed", "False")]}, None),
    ({"conditions": [condition("Complete")], "items": {"succeeded": 5, "failed": 0}}, ""),
    ({"conditions": [condition("Complete")], "items": {"succeeded": 4, "failed": 1}},
     "the step completed with items {'succeeded': 4, 'failed': 1}, expected 5 succeeded"),
    ({"conditions": [condition("Failed")], "message": "boom"}, None),  # still stopping
    ({"conditions": [condition("Failed")], "message": "boom", "completionTime": "t"},
     "the step failed: boom"),
], ids=["no-status", "running", "succeeded", "some-failed", "failing", "failed"])
def test_verdict(status: dict[str, Any], expected: str | None) -> None:
    assert load_script("check_step").verdict(status, 5) == expected


def test_the_entry_script_makes_one_line_per_file(tmp_path: Any) -> None:
    score = load_script("score")
    paths = []
    for name, text in (("item-1.txt", "alpha\n"), ("item-2.txt", "bravo")):
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    score.init()
    assert score.run(paths) == ["item-1.txt: ALPHA", "item-2.txt: BRAVO"]
