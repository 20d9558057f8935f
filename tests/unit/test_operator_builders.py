"""The operator's manifest builders (pure): names, ownership, security, phases' Job shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from prs_operator.builders import (
    RunnerSettings,
    build_merge_job,
    build_plan_job,
    build_progress_secret,
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


def unqueued(step: dict[str, Any]) -> dict[str, Any]:
    """STEP without Kueue's queue label (make_step's steps are queued)."""
    step["metadata"]["labels"] = {}
    return step


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
    # Kueue's label only on the run Job: one Workload, one admission per step.
    assert labels.get("kueue.x-k8s.io/queue-name") == ("q" if role == "run" else None)
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
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["PRS_PROGRESS_TOKEN"] == {"secretKeyRef": {"name": "prs-progress-u-1",
                                                          "key": "token"}}
    assert progress_token(b"key", "ns", "step", "u-1") not in json.dumps(job)
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
    env = {e["name"]: e.get("value") for e in pod_of(job)["containers"][0]["env"]}
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
    step = unqueued(make_step(
        resources={"limits": {"cpu": "2"}}, ttlSecondsAfterFinished=60, suspend=True,
        podTemplate={"nodeSelector": {"gpu": "yes"}, "tolerations": [{"key": "k"}],
                     "labels": {"team": "a"}, "volumes": [{"name": "x", "emptyDir": {}}],
                     "volumeMounts": [{"name": "x", "mountPath": "/x"}]}))
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


POLICY = {"rules": [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "runner", "operator": "In",
                                          "values": [3]}},
]}
OWNER = {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep", "name": "step",
         "uid": "u-1", "controller": True}
PLAN = "pvc://results/out-X/_prs/plan.json"
TAIL = ["--termination-log", "/dev/termination-log"]


@pytest.mark.parametrize(("code", "build", "command"), [
    ({"configMap": "code"}, lambda step: build_plan_job(step, SETTINGS),
     ["plan", "--code-root", "/prs/code"]),
    ({"path": "/app"}, lambda step: build_plan_job(step, SETTINGS),
     ["plan", "--code-root", "/app"]),
    ({"configMap": "code"}, lambda step: build_run_job(step, SETTINGS),
     ["shard", "--plan", PLAN, "--code-root", "/prs/code"]),
    ({"path": "/app"}, lambda step: build_run_job(step, SETTINGS),
     ["shard", "--plan", PLAN, "--code-root", "/app"]),
    ({"configMap": "code"}, lambda step: build_merge_job(step, SETTINGS, 1712345678.12345),
     ["merge", "--plan", PLAN, "--started", "1712345678.123"]),
    ({"configMap": "code"},
     lambda step: build_reuse_job(step, SETTINGS, "earlier", "pvc://old/out"),
     ["reuse", "--plan", PLAN, "--from", "pvc://old/out", "--from-step", "earlier"]),
], ids=["plan-config-map", "plan-image-path", "run-config-map", "run-image-path", "merge",
        "reuse"])
def test_every_child_runs_the_runner_with_exactly_its_phase_arguments(
    code: dict[str, str], build: Any, command: list[str]
) -> None:
    # A trailing slash on the output URI is dropped; the rest of the URI is kept verbatim.
    step = make_step(code={"entryScript": "score.py", **code},
                     output={"uri": "pvc://results/out-X/"})
    container = pod_of(build(step))["containers"][0]
    assert container["command"] == ["prs-runner", *command, *TAIL]
    assert container["terminationMessagePath"] == TAIL[1]  # where the runner writes it


@pytest.mark.parametrize(("role", "build", "job_spec"), [
    ("plan", BUILDERS[0][1], {"backoffLimit": 2, "podFailurePolicy": POLICY, "suspend": False}),
    ("run", BUILDERS[1][1], {"podFailurePolicy": POLICY, "suspend": True,  # queued: Kueue's
                             "completionMode": "Indexed", "completions": 4, "parallelism": 4,
                             "backoffLimitPerIndex": 2}),
    ("merge", BUILDERS[2][1], {"backoffLimit": 2, "podFailurePolicy": POLICY,
                               "suspend": False}),
    ("reuse", BUILDERS[3][1], {"backoffLimit": 2, "podFailurePolicy": POLICY,
                               "suspend": False}),
], ids=[b[0] for b in BUILDERS])
def test_each_phase_gives_exactly_this_job_around_its_pod(
    role: str, build: Any, job_spec: dict[str, Any]
) -> None:
    job = build(make_step(nodeCount=4, maxShardRetries=2))
    template = job["spec"].pop("template")
    assert {k: v for k, v in job.items() if k != "spec"} == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": f"step-{role}", "namespace": "ns",
            "labels": {**({"kueue.x-k8s.io/queue-name": "q"} if role == "run" else {}),
                       "app.kubernetes.io/managed-by": "parallelrun-operator",
                       "parallelrun.io/step": "step", "parallelrun.io/role": role},
            "annotations": {},
            "ownerReferences": [OWNER],
        },
    }
    assert job["spec"] == job_spec
    assert template["metadata"]["labels"]["parallelrun.io/role"] == role


@pytest.mark.parametrize(("role", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_the_failure_policy_names_the_runner_container(role: str, build: Any) -> None:
    """Exit code 3 fails the Job at once only if the policy keys on the real container."""
    job = build(make_step())
    containers = pod_of(job)["containers"]
    rule = job["spec"]["podFailurePolicy"]["rules"][1]
    assert [c["name"] for c in containers] == [rule["onExitCodes"]["containerName"]]


@pytest.mark.parametrize(("suspend", "ttl", "annotations", "job_ttl"), [
    (True, None, {"parallelrun.io/suspended-by-step": "true"}, "absent"),
    (False, None, {}, "absent"),
    (False, 0, {}, 0),  # 0 means delete at once, not "no TTL"
    (True, 3600, {"parallelrun.io/suspended-by-step": "true"}, 3600),
], ids=["suspended", "running", "ttl-zero", "suspended-with-ttl"])
def test_a_suspended_step_marks_its_jobs_and_the_ttl_is_passed_through(
    suspend: bool, ttl: int | None, annotations: dict[str, str], job_ttl: int | str
) -> None:
    build: Any
    for _, build in BUILDERS:
        job = build(unqueued(make_step(suspend=suspend, ttlSecondsAfterFinished=ttl)))
        assert job["spec"]["suspend"] is suspend
        assert job["metadata"]["annotations"] == annotations
        assert job["spec"].get("ttlSecondsAfterFinished", "absent") == job_ttl


@pytest.mark.parametrize("suspend", [False, True])
def test_a_queued_run_job_is_created_suspended_for_kueue_to_admit(suspend: bool) -> None:
    """Kueue's protocol: created suspended, with no mark that would let the step resume it;
    the plan, merge and copy Jobs are not queued and follow spec.suspend."""
    build: Any
    for role, build in BUILDERS:
        job = build(make_step(suspend=suspend))
        queued = role.startswith("run")
        assert job["spec"]["suspend"] is (queued or suspend), role
        marked = suspend and not queued
        assert job["metadata"]["annotations"] == (
            {"parallelrun.io/suspended-by-step": "true"} if marked else {}), role


def test_the_owner_reference_follows_the_steps_api_version_and_labels_cannot_spoof() -> None:
    step = make_step()
    step["apiVersion"] = "parallelrun.io/v1beta1"
    step["metadata"]["labels"] = {"parallelrun.io/role": "merge", "team": "a"}
    job = build_run_job(step, SETTINGS)
    assert job["metadata"]["ownerReferences"] == [{**OWNER, "apiVersion": "parallelrun.io/v1beta1"}]
    assert job["metadata"]["labels"] == {
        "team": "a", "app.kubernetes.io/managed-by": "parallelrun-operator",
        "parallelrun.io/step": "step", "parallelrun.io/role": "run"}
    del step["apiVersion"]
    del step["metadata"]["labels"]
    job = build_run_job(step, SETTINGS)
    assert job["metadata"]["ownerReferences"] == [OWNER]
    assert job["metadata"]["labels"]["parallelrun.io/role"] == "run"


def test_the_plan_document_carries_only_name_namespace_and_spec_in_a_stable_form() -> None:
    step = make_step()
    env = pod_of(build_plan_job(step, SETTINGS))["containers"][0]["env"]
    assert [e["name"] for e in env][-2:] == ["PRS_PROGRESS_TOKEN", "PRS_STEP"]
    assert json.loads(env[-1]["value"]) == {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "step", "namespace": "ns"}, "spec": step["spec"]}
    # The same step with its fields in another order gives the very same Job.
    reordered = {**step, "spec": dict(reversed(list(step["spec"].items())))}
    assert build_plan_job(reordered, SETTINGS) == build_plan_job(step, SETTINGS)


def test_the_progress_token_is_an_hmac_of_namespace_name_and_uid() -> None:
    expected = hmac.new(b"key", b"ns/step/u-1", hashlib.sha256).hexdigest()
    assert progress_token(b"key", "ns", "step", "u-1") == expected
    assert len({progress_token(b"key", *ids) for ids in [
        ("ns", "step", "u-1"), ("ns", "step", "u-2"), ("ns", "other", "u-1"),
        ("ns2", "step", "u-1")]}) == 4


def test_the_progress_secret_holds_the_token_and_belongs_to_the_step() -> None:
    secret = build_progress_secret(make_step(), SETTINGS)
    assert secret["metadata"]["name"] == "prs-progress-u-1"
    assert secret["metadata"]["namespace"] == "ns"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["uid"], owner["controller"]) == ("u-1", True)
    assert secret["metadata"]["labels"]["parallelrun.io/step"] == "step"
    assert secret["stringData"] == {"token": progress_token(b"key", "ns", "step", "u-1")}
