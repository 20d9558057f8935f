"""The operator's manifest builders (pure): names, ownership, security, phases' Job shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prs_operator.builders import (
    RunnerSettings,
    build_merge_job,
    build_plan_job,
    build_reuse_job,
    build_run_job,
    claims_of,
    code_root,
    progress_token,
)
from prs_runner.step.spec import apply_defaults

SETTINGS = RunnerSettings("runner:1", "http://op:8080/v1/progress", b"key")


def make_step(**spec: Any) -> dict[str, Any]:
    body = {"code": {"entryScript": "score.py", "configMap": "code"},
            "input": {"type": "files", "uri": "pvc://data/in"},
            "output": {"uri": "pvc://results/out"}, **spec}
    return {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
            "metadata": {"name": "step", "namespace": "ns", "uid": "u-1",
                         "labels": {"kueue.x-k8s.io/queue-name": "q"}},
            "spec": apply_defaults(body)}


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


BUILDERS = [
    ("plan", lambda step: build_plan_job(step, SETTINGS)),
    ("run", lambda step: build_run_job(step, SETTINGS)),
    ("merge", lambda step: build_merge_job(step, SETTINGS, 1.0)),
    ("reuse", lambda step: build_reuse_job(step, SETTINGS, "earlier", "pvc://old/out")),
]


@pytest.mark.parametrize(("role", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_every_child_is_owned_named_labelled_and_locked_down(role: str, build: Any) -> None:
    job = build(make_step())
    assert job["metadata"]["name"] == f"step-{role}"
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep", "name": "step",
        "uid": "u-1", "controller": True}]
    labels = job["metadata"]["labels"]
    assert labels["parallelrun.io/role"] == role and labels["parallelrun.io/step"] == "step"
    assert labels["kueue.x-k8s.io/queue-name"] == "q"
    pod = pod_of(job)
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    subcommand = {"run": "shard"}.get(role, role)
    assert container["command"][:2] == ["prs-runner", subcommand]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert container["image"] == "runner:1"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PRS_PROGRESS_TOKEN"] == progress_token(b"key", "ns", "step", "u-1")
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_the_run_job_is_indexed_with_per_index_retries_and_a_failure_policy() -> None:
    job = build_run_job(make_step(nodeCount=3, maxShardRetries=5), SETTINGS)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert spec["backoffLimitPerIndex"] == 5 and "backoffLimit" not in spec
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "runner", "operator": "In",
                                              "values": [3]}},
    ]
    command = pod_of(job)["containers"][0]["command"]
    assert command[:4] == ["prs-runner", "shard", "--plan", "pvc://results/out/_prs/plan.json"]


def test_the_plan_pod_gets_the_whole_step_document() -> None:
    job = build_plan_job(make_step(), SETTINGS)
    env = {e["name"]: e["value"] for e in pod_of(job)["containers"][0]["env"]}
    document = json.loads(env["PRS_STEP"])
    assert document["kind"] == "ParallelRunStep" and document["metadata"]["name"] == "step"
    assert document["spec"]["input"]["uri"] == "pvc://data/in"


@pytest.mark.parametrize(("uris", "expected"), [
    (("pvc://data/in", "pvc://results/out", []), {"data": True, "results": False}),
    (("pvc://data/in", "pvc://data/out", []), {"data": False}),
    (("/mnt/in", "s3://bucket/out", ["pvc://models/m.joblib"]), {"models": True}),
    (("/mnt/in", "/mnt/out", []), {}),
])
def test_claims_are_read_only_unless_the_output_is_on_them(
    uris: tuple[str, str, list[str]], expected: dict[str, bool]
) -> None:
    input_uri, output_uri, sides = uris
    spec = make_step(input={"type": "files", "uri": input_uri}, output={"uri": output_uri},
                     sideInputs=[{"name": f"s{i}", "uri": u} for i, u in enumerate(sides)])
    assert claims_of(spec["spec"]) == expected


@pytest.mark.parametrize(("code", "root", "has_code_volume"), [
    ({"entryScript": "s.py", "configMap": "c"}, "/prs/code", True),
    ({"entryScript": "s.py", "path": "/app"}, "/app", False),
])
def test_code_comes_from_the_config_map_or_the_image(
    code: dict[str, str], root: str, has_code_volume: bool
) -> None:
    step = make_step(code=code)
    assert code_root(step["spec"]) == root
    volumes = [v["name"] for v in pod_of(build_run_job(step, SETTINGS))["volumes"]]
    assert ("code" in volumes) is has_code_volume


def test_pod_template_resources_ttl_and_suspend_are_applied() -> None:
    step = make_step(
        resources={"limits": {"cpu": "2"}}, ttlSecondsAfterFinished=60, suspend=True,
        podTemplate={"nodeSelector": {"gpu": "yes"}, "tolerations": [{"key": "k"}],
                     "labels": {"team": "a"}, "volumes": [{"name": "x", "emptyDir": {}}],
                     "volumeMounts": [{"name": "x", "mountPath": "/x"}]})
    job = build_run_job(step, SETTINGS)
    pod = pod_of(job)
    assert pod["nodeSelector"] == {"gpu": "yes"} and pod["tolerations"] == [{"key": "k"}]
    assert {"name": "x", "emptyDir": {}} in pod["volumes"]
    assert {"name": "x", "mountPath": "/x"} in pod["containers"][0]["volumeMounts"]
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "2"}}
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "a"
    assert job["spec"]["ttlSecondsAfterFinished"] == 60
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["annotations"] == {"parallelrun.io/suspended-by-step": "true"}


def test_the_reuse_job_mounts_the_earlier_output_read_only() -> None:
    job = build_reuse_job(make_step(), SETTINGS, "earlier", "pvc://old/out")
    pod = pod_of(job)
    assert {"name": "pvc-reuse", "persistentVolumeClaim": {"claimName": "old", "readOnly": True}
            } in pod["volumes"]
    assert pod["containers"][0]["command"][1:8] == [
        "reuse", "--plan", "pvc://results/out/_prs/plan.json", "--from", "pvc://old/out",
        "--from-step", "earlier"]
