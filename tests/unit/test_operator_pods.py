"""The pod template of every child Job (pure): container, security, environment and volumes.

The full manifest is asserted as one literal: the pod is the contract with the kubelet
(locked-down security context, the runner's environment, one mount per claim, read-only
unless the step writes there), and any silent change to it must show up here."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from prs_operator.builders import RunnerSettings, build_reuse_job, build_run_job, claims_of
from tests.unit.test_operator_builders import SETTINGS, make_step, pod_of

TOKEN = hmac.new(b"key", b"ns/step/u-1", hashlib.sha256).hexdigest()
CHILD_LABELS = {"app.kubernetes.io/managed-by": "parallelrun-operator",
                "parallelrun.io/step": "step", "parallelrun.io/role": "run"}
BASE_ENV = [
    {"name": "HOME", "value": "/tmp"},
    {"name": "TMPDIR", "value": "/tmp"},
    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    {"name": "PRS_PVC_ROOT", "value": "/mnt/pvc"},
    {"name": "PRS_STEP_NAMESPACE", "value": "ns"},
    {"name": "PRS_STEP_NAME", "value": "step"},
    {"name": "PRS_STEP_UID", "value": "u-1"},
    {"name": "PRS_PROGRESS_URL", "value": "http://op:8080/v1/progress"},
    {"name": "PRS_PROGRESS_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "prs-progress-u-1", "key": "token"}}},  # never a plain value in the pod spec
]
CONTAINER_SECURITY = {
    "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
# A shard learns its CPU request (processCountPerNode unset: one worker per CPU).
CPU_REQUEST = {"name": "PRS_CPU_REQUEST", "valueFrom": {"resourceFieldRef": {
    "containerName": "runner", "resource": "requests.cpu", "divisor": "1"}}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
RUN_COMMAND_TAIL = ["--termination-log", "/dev/termination-log"]
AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": "pool", "operator": "In", "values": ["batch"]}]}]}}}


def test_a_fully_configured_step_gives_exactly_this_pod_template() -> None:
    step = make_step(
        image="custom:2",
        resources={"limits": {"cpu": "2", "memory": "4Gi"}},
        sideInputs=[{"name": "model", "uri": "pvc://models/m/v1.joblib"}],
        podTemplate={
            "nodeSelector": {"gpu": "yes"}, "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": AFFINITY, "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "batch-low",
            # A template label cannot spoof the role the operator indexes pods by.
            "labels": {"team": "a", "parallelrun.io/role": "spoofed"},
            "annotations": {"sidecar.istio.io/inject": "false"},
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        })
    template = build_run_job(step, SETTINGS)["spec"]["template"]
    assert template == {
        "metadata": {
            "labels": {"team": "a", **CHILD_LABELS},
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY,
            "containers": [{
                "name": "runner",
                "image": "custom:2",
                "command": ["prs-runner", "shard", "--plan", "pvc://results/out/_prs/plan.json",
                            "--code-root", "/prs/code", *RUN_COMMAND_TAIL],
                "env": [*BASE_ENV, CPU_REQUEST],
                "volumeMounts": [
                    TMP_MOUNT,
                    {"name": "code", "mountPath": "/prs/code", "readOnly": True},
                    {"name": "pvc-0", "mountPath": "/mnt/pvc/data", "readOnly": True},
                    {"name": "pvc-1", "mountPath": "/mnt/pvc/models", "readOnly": True},
                    {"name": "pvc-2", "mountPath": "/mnt/pvc/results", "readOnly": False},
                    {"name": "scratch", "mountPath": "/scratch"},
                ],
                "securityContext": CONTAINER_SECURITY,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
            }],
            "volumes": [
                TMP_VOLUME,
                {"name": "code", "configMap": {"name": "code"}},
                {"name": "pvc-0",
                 "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                {"name": "pvc-1",
                 "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
                {"name": "pvc-2",
                 "persistentVolumeClaim": {"claimName": "results", "readOnly": False}},
                {"name": "scratch", "emptyDir": {"medium": "Memory"}},
            ],
            "nodeSelector": {"gpu": "yes"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": AFFINITY,
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "batch-low",
        },
    }


def test_a_minimal_step_gets_only_the_locked_down_defaults() -> None:
    """Code baked into the image, object-store data, no pod template: no extra volume, no
    resources, no scheduling keys and no annotations on the pod."""
    step = make_step(code={"entryScript": "score.py", "path": "/app"},
                     input={"type": "files", "uri": "s3://bucket/in"},
                     output={"uri": "s3://bucket/out"})
    template = build_run_job(step, RunnerSettings("runner:7", "http://p/v1/progress", b"key"))
    assert template["spec"]["template"] == {
        "metadata": {"labels": CHILD_LABELS},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY,
            "containers": [{
                "name": "runner",
                "image": "runner:7",  # the operator's default when the step names none
                "command": ["prs-runner", "shard", "--plan", "s3://bucket/out/_prs/plan.json",
                            "--code-root", "/app", *RUN_COMMAND_TAIL],
                "env": [*BASE_ENV[:7], {"name": "PRS_PROGRESS_URL",
                                        "value": "http://p/v1/progress"}, BASE_ENV[8],
                        CPU_REQUEST],
                "volumeMounts": [TMP_MOUNT],
                "securityContext": CONTAINER_SECURITY,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }],
            "volumes": [TMP_VOLUME],
        },
    }


@pytest.mark.parametrize(("uris", "expected"), [
    (("pvc://data/a/b/c.txt", "/mnt/out", []), {"data": True}),
    (("/mnt/in", "pvc://data/out", ["pvc://data/models/m.joblib"]), {"data": False}),
    (("pvc://data/in", "s3://b/out", ["pvc://data/m", "pvc://other/x/y"]),
     {"data": True, "other": True}),
], ids=["nested-path-names-the-claim", "side-input-keeps-the-output-claim-writable",
        "inputs-only-are-read-only"])
def test_the_claim_is_the_first_path_segment_and_writable_if_anything_writes_it(
    uris: tuple[str, str, list[str]], expected: dict[str, bool]
) -> None:
    input_uri, output_uri, sides = uris
    step = make_step(input={"type": "files", "uri": input_uri}, output={"uri": output_uri},
                     sideInputs=[{"name": f"s{i}", "uri": u} for i, u in enumerate(sides)])
    assert claims_of(step["spec"]) == expected


REUSE_VOLUME = {"name": "pvc-reuse",
                "persistentVolumeClaim": {"claimName": "old", "readOnly": True}}
REUSE_MOUNT = {"name": "pvc-reuse", "mountPath": "/mnt/pvc/old", "readOnly": True}


@pytest.mark.parametrize(("source_uri", "extra_volumes", "extra_mounts"), [
    ("pvc://old/runs/2024/out", [REUSE_VOLUME], [REUSE_MOUNT]),
    ("pvc://results/earlier", [], []),  # the step's own output claim, already mounted
    ("pvc://data/earlier", [], []),  # already mounted (read-only) as the input claim
    ("s3://bucket/earlier", [], []),
], ids=["other-claim", "output-claim", "input-claim", "object-store"])
def test_the_reuse_job_mounts_the_earlier_outputs_claim_once_and_read_only(
    source_uri: str, extra_volumes: list[dict[str, Any]], extra_mounts: list[dict[str, Any]]
) -> None:
    step = make_step()
    base = pod_of(build_run_job(step, SETTINGS))
    pod = pod_of(build_reuse_job(step, SETTINGS, "earlier", source_uri))
    assert pod["volumes"] == base["volumes"] + extra_volumes
    assert pod["containers"][0]["volumeMounts"] == (
        base["containers"][0]["volumeMounts"] + extra_mounts)


GPU_STEP = {"resources": {"requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
                          "limits": {"memory": "64Gi", "nvidia.com/gpu": "1"}},
            "podTemplate": {"nodeSelector": {"gpu": "a100"},
                            "tolerations": [{"key": "gpu", "operator": "Exists"}],
                            "priorityClassName": "batch-high",
                            "imagePullSecrets": [{"name": "registry"}]}}


@pytest.mark.parametrize("role", ["plan", "merge", "reuse"])
def test_plan_merge_and_copy_pods_are_small_and_go_anywhere(role: str) -> None:
    from prs_operator.builders import build_merge_job, build_plan_job

    step = make_step(**GPU_STEP)
    jobs = {"plan": build_plan_job(step, SETTINGS),
            "merge": build_merge_job(step, SETTINGS, 1.0),
            "reuse": build_reuse_job(step, SETTINGS, "earlier", "pvc://data/old")}
    pod = pod_of(jobs[role])
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "64Gi"}}
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(pod)
    assert pod["imagePullSecrets"] == [{"name": "registry"}]


def test_the_shard_pods_get_the_steps_resources_and_placement() -> None:
    pod = pod_of(build_run_job(make_step(**GPU_STEP), SETTINGS))
    assert pod["containers"][0]["resources"] == GPU_STEP["resources"]
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["priorityClassName"] == "batch-high"


def test_without_a_memory_limit_auxiliary_pods_only_request() -> None:
    from prs_operator.builders import build_plan_job

    pod = pod_of(build_plan_job(make_step(resources={"limits": {"cpu": "4"}}), SETTINGS))
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m",
                                                              "memory": "256Mi"}}


@pytest.mark.parametrize(("limit", "wanted"), [
    ("64Mi", "64Mi"), ("200M", "200M"), ("0.1Gi", "0.1Gi"), ("1e8", "1e8"),
    ("256Mi", "256Mi"), ("1Gi", "256Mi"), ("300M", "256Mi"), ("lots", "256Mi")])
def test_a_memory_limit_below_the_usual_request_becomes_the_request(
        limit: str, wanted: str) -> None:
    """The API server refuses a pod whose memory request is over its limit ("lots" is left
    for it to refuse in its own words)."""
    from prs_operator.builders import build_plan_job

    pod = pod_of(build_plan_job(make_step(resources={"limits": {"memory": limit}}), SETTINGS))
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": wanted}, "limits": {"memory": limit}}


def test_quantities_read_as_the_api_server_reads_them() -> None:
    from decimal import Decimal

    from prs_operator.builders import quantity_value

    assert quantity_value("64Mi") == 64 * 2**20
    assert quantity_value("1.5Gi") == Decimal(3 * 2**29)
    assert quantity_value("500M") == 500_000_000
    assert quantity_value("2e3") == quantity_value("2k") == 2000
    assert quantity_value("100m") == Decimal("0.1")
    assert quantity_value(" 1E ") == 10**18  # exa, not an exponent
    assert quantity_value("lots") is None
    assert quantity_value("") is None


@pytest.mark.parametrize("role", ["plan", "run", "merge", "reuse"])
def test_credentials_reach_every_pod_of_the_step(role: str) -> None:
    from prs_operator.builders import build_merge_job, build_plan_job

    secret_env = {"name": "AWS_SECRET_ACCESS_KEY",
                  "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret"}}}
    step = make_step(env=[{"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"}],
                     podTemplate={"serviceAccountName": "reader", "env": [secret_env],
                                  "envFrom": [{"secretRef": {"name": "more"}}]})
    jobs = {"plan": build_plan_job(step, SETTINGS), "run": build_run_job(step, SETTINGS),
            "merge": build_merge_job(step, SETTINGS, 1.0),
            "reuse": build_reuse_job(step, SETTINGS, "earlier", "pvc://data/old")}
    pod = pod_of(jobs[role])
    container = pod["containers"][0]
    assert pod["serviceAccountName"] == "reader"
    assert pod["automountServiceAccountToken"] is False  # the runner never calls the API
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"} in container["env"]
    assert secret_env in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "more"}}]
    names = [e["name"] for e in container["env"]]
    assert names.index("AWS_ENDPOINT_URL") > names.index("PRS_PROGRESS_TOKEN")
