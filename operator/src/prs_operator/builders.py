"""Manifests of a step's children, as plain dicts. Pure: the same step gives the same Jobs.

Names are deterministic (`<step>-plan`, `-run`, `-merge`, `-reuse`), so a create that meets
409 after a restart means the Job is already there, and there is never a second Job for a
phase."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prs_operator.observation import ANNOTATION_SUSPENDED_BY_STEP, LABEL_ROLE, LABEL_STEP

RUNNER_UID = 10001
EXIT_FATAL = 3  # prs_runner.execution.shard.EXIT_FATAL: fail the Job, do not retry the pod
PVC_ROOT = "/mnt/pvc"
CODE_MOUNT = "/prs/code"
TERMINATION_LOG = "/dev/termination-log"
ROLES = ("plan", "run", "merge", "reuse")
MANAGED_BY = {"app.kubernetes.io/managed-by": "parallelrun-operator"}


@dataclass(frozen=True)
class RunnerSettings:
    image: str  # the operator's default runner image
    progress_url: str
    progress_key: bytes


PLACEMENT_KEYS = ("nodeSelector", "tolerations", "affinity", "priorityClassName")
AUXILIARY_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
KUEUE_PREFIX = "kueue.x-k8s.io/"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PROGRESS_TOKEN_KEY = "token"


def child_name(step_name: str, role: str) -> str:
    return f"{step_name}-{role}"


def progress_token(key: bytes, namespace: str, name: str, uid: str) -> str:
    return hmac.new(key, f"{namespace}/{name}/{uid}".encode(), hashlib.sha256).hexdigest()


def plan_uri(spec: Mapping[str, Any]) -> str:
    return f"{spec['output']['uri'].rstrip('/')}/_prs/plan.json"


def claims_of(spec: Mapping[str, Any]) -> dict[str, bool]:
    """PVC claims the step reads or writes, claim → read-only."""
    uris = [(spec["input"]["uri"], True), (spec["output"]["uri"], False)]
    uris += [(side["uri"], True) for side in spec.get("sideInputs") or []]
    claims: dict[str, bool] = {}
    for uri, read_only in uris:
        if uri.startswith("pvc://"):
            claim = uri[len("pvc://"):].split("/", 1)[0]
            claims[claim] = claims.get(claim, True) and read_only
    return claims


def code_root(spec: Mapping[str, Any]) -> str:
    code = spec["code"]
    return str(code["path"]) if code.get("path") else CODE_MOUNT


def build_volumes(spec: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if spec["code"].get("configMap"):
        volumes.append({"name": "code", "configMap": {"name": spec["code"]["configMap"]}})
        mounts.append({"name": "code", "mountPath": CODE_MOUNT, "readOnly": True})
    for number, (claim, read_only) in enumerate(sorted(claims_of(spec).items())):
        volumes.append({"name": f"pvc-{number}",
                        "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})
        mounts.append({"name": f"pvc-{number}", "mountPath": f"{PVC_ROOT}/{claim}",
                       "readOnly": read_only})
    template = spec.get("podTemplate") or {}
    return volumes + list(template.get("volumes") or []), mounts + list(
        template.get("volumeMounts") or [])


# The container's CPU request, in whole CPUs (rounded up; 0 when it requests none).
CPU_REQUEST_ENV = {"name": "PRS_CPU_REQUEST", "valueFrom": {"resourceFieldRef": {
    "containerName": "runner", "resource": "requests.cpu", "divisor": "1"}}}


def build_env(step: Mapping[str, Any], settings: RunnerSettings) -> list[dict[str, Any]]:
    metadata = step["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    return [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PRS_PVC_ROOT", "value": PVC_ROOT},
        {"name": "PRS_STEP_NAMESPACE", "value": namespace},
        {"name": "PRS_STEP_NAME", "value": name},
        {"name": "PRS_STEP_UID", "value": uid},
        {"name": "PRS_PROGRESS_URL", "value": settings.progress_url},
        # From the step's own Secret, not a plain value: a pod spec is readable by anyone
        # who may list pods in the namespace, a Secret only by those who may read Secrets.
        {"name": "PRS_PROGRESS_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": progress_secret_name(uid), "key": PROGRESS_TOKEN_KEY}}},
    ]


def progress_secret_name(uid: str) -> str:
    """Named after the step's UID: only this step's pods use it, and a step created again
    under the same name gets a Secret of its own."""
    return f"prs-progress-{uid}"


def build_progress_secret(step: Mapping[str, Any], settings: RunnerSettings) -> dict[str, Any]:
    metadata = step["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": progress_secret_name(uid), "namespace": namespace,
                     "labels": child_labels(step, "progress"),
                     "ownerReferences": [owner_reference(step)]},
        "stringData": {PROGRESS_TOKEN_KEY: progress_token(settings.progress_key, namespace,
                                                          name, uid)},
    }


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID,
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_pod_template(
    step: Mapping[str, Any], role: str, command: list[str], settings: RunnerSettings,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = step["spec"]
    template = spec.get("podTemplate") or {}
    volumes, mounts = build_volumes(spec)
    container: dict[str, Any] = {
        "name": "runner",
        "image": spec.get("image") or settings.image,
        "command": command,
        "env": build_env(step, settings) + step_env(spec) + (extra_env or []),
        "volumeMounts": mounts,
        "securityContext": container_security(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    resources = spec.get("resources") if role == "run" else auxiliary_resources(spec)
    if resources:
        container["resources"] = resources
    if role == "run":  # processCountPerNode unset: one worker per CPU the shard requested
        container["env"].append(CPU_REQUEST_ENV)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUNNER_UID,
                            "runAsGroup": RUNNER_UID, "fsGroup": RUNNER_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    # Placement is for the shards (GPU nodes, a priority); plan, merge and copy pods go
    # wherever they fit. Image pull secrets are needed by every role.
    placement = PLACEMENT_KEYS if role == "run" else ()
    for key in (*placement, "imagePullSecrets", "serviceAccountName"):
        if template.get(key):
            pod_spec[key] = template[key]
    if template.get("envFrom"):
        container["envFrom"] = list(template["envFrom"])
    labels = {**(template.get("labels") or {}), **child_labels(step, role)}
    metadata: dict[str, Any] = {"labels": labels}
    if template.get("annotations"):
        metadata["annotations"] = dict(template["annotations"])
    return {"metadata": metadata, "spec": pod_spec}


def step_env(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The step's variables in every pod (plan and merge read and write the storage too):
    spec.env as plain values, then podTemplate.env as given (valueFrom a Secret, say)."""
    plain = [{"name": item["name"], "value": str(item.get("value", ""))}
             for item in spec.get("env") or []]
    return plain + list((spec.get("podTemplate") or {}).get("env") or [])


def auxiliary_resources(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Plan, merge and copy pods: small requests, none of the shards' GPUs or other
    extended resources, and the step's memory limit (a merge holds one mini-batch). A limit
    below the usual request becomes the request: the API server refuses a pod whose request
    is over its limit."""
    limits = (spec.get("resources") or {}).get("limits") or {}
    resources: dict[str, Any] = {"requests": dict(AUXILIARY_REQUESTS)}
    limit = limits.get("memory")
    if limit:
        resources["limits"] = {"memory": limit}
        allowed, usual = quantity_value(str(limit)), quantity_value(AUXILIARY_REQUESTS["memory"])
        if allowed is not None and usual is not None and allowed < usual:
            resources["requests"]["memory"] = limit
    return resources


QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
SUFFIXES = {**{f"{s}i": Decimal(1024) ** (n + 1) for n, s in enumerate("KMGTPE")},
            **{s: Decimal(1000) ** (n + 1) for n, s in enumerate("kMGTPE")},
            "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3")}


def quantity_value(text: str) -> Decimal | None:
    """A Kubernetes resource quantity (64Mi, 0.5Gi, 200M, 1e9) as a number; None when it is
    not one (the API server then refuses the Job in its own words)."""
    match = QUANTITY.fullmatch(text.strip())
    if match is None:
        return None
    number, suffix = Decimal(match[1]), match[2] or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Decimal(10) ** int(suffix[1:])
    return number * SUFFIXES.get(suffix, Decimal(1))


def job_labels(step: Mapping[str, Any], role: str) -> dict[str, str]:
    """The step's labels on its Jobs; Kueue's only on the run Job, so that a step is one
    Workload (one admission) and its small plan and merge Jobs never wait in a queue."""
    labels = dict(step["metadata"].get("labels") or {})
    if role != "run":
        labels = {k: v for k, v in labels.items() if not k.startswith(KUEUE_PREFIX)}
    return {**labels, **child_labels(step, role)}


def child_labels(step: Mapping[str, Any], role: str) -> dict[str, str]:
    return {**MANAGED_BY, LABEL_STEP: step["metadata"]["name"], LABEL_ROLE: role}


def failure_policy() -> dict[str, Any]:
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "runner", "operator": "In",
                                              "values": [EXIT_FATAL]}},
    ]}


def build_job(
    step: Mapping[str, Any], role: str, command: list[str], settings: RunnerSettings,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    metadata, spec = step["metadata"], step["spec"]
    labels = job_labels(step, role)
    # Kueue's protocol for batch/v1 Jobs: a queued Job is created suspended and only Kueue
    # resumes it (on admission), so it carries no mark saying the step suspended it.
    queued = KUEUE_QUEUE_LABEL in labels
    suspend = queued or bool(spec.get("suspend"))
    job_spec: dict[str, Any] = {
        "backoffLimit": 2,
        "podFailurePolicy": failure_policy(),
        "suspend": suspend,
        "template": build_pod_template(step, role, command, settings, extra_env),
    }
    if spec.get("ttlSecondsAfterFinished") is not None:
        job_spec["ttlSecondsAfterFinished"] = spec["ttlSecondsAfterFinished"]
    annotations = {ANNOTATION_SUSPENDED_BY_STEP: "true"} if suspend and not queued else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": child_name(metadata["name"], role),
            "namespace": metadata["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(step)],
        },
        "spec": job_spec,
    }


def owner_reference(step: Mapping[str, Any]) -> dict[str, Any]:
    metadata = step["metadata"]
    return {"apiVersion": step.get("apiVersion", "parallelrun.io/v1alpha1"),
            "kind": "ParallelRunStep", "name": metadata["name"], "uid": metadata["uid"],
            "controller": True}


def runner_command(*args: str) -> list[str]:
    return ["prs-runner", *args, "--termination-log", TERMINATION_LOG]


def build_plan_job(step: Mapping[str, Any], settings: RunnerSettings) -> dict[str, Any]:
    document = {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
                "metadata": {"name": step["metadata"]["name"],
                             "namespace": step["metadata"]["namespace"]},
                "spec": step["spec"]}
    env = [{"name": "PRS_STEP", "value": json.dumps(document, sort_keys=True)}]
    command = runner_command("plan", "--code-root", code_root(step["spec"]))
    return build_job(step, "plan", command, settings, env)


def build_run_job(step: Mapping[str, Any], settings: RunnerSettings) -> dict[str, Any]:
    spec = step["spec"]
    command = runner_command("shard", "--plan", plan_uri(spec), "--code-root", code_root(spec))
    job = build_job(step, "run", command, settings)
    job["spec"].pop("backoffLimit")
    job["spec"].update(
        completionMode="Indexed",
        completions=spec["nodeCount"],
        parallelism=spec["nodeCount"],
        backoffLimitPerIndex=spec["maxShardRetries"],
    )
    return job


def build_merge_job(
    step: Mapping[str, Any], settings: RunnerSettings, started: float
) -> dict[str, Any]:
    command = runner_command("merge", "--plan", plan_uri(step["spec"]), "--started",
                             f"{started:.3f}")
    return build_job(step, "merge", command, settings)


def build_reuse_job(
    step: Mapping[str, Any], settings: RunnerSettings, source_step: str, source_uri: str
) -> dict[str, Any]:
    command = runner_command("reuse", "--plan", plan_uri(step["spec"]), "--from", source_uri,
                             "--from-step", source_step)
    job = build_job(step, "reuse", command, settings)
    # Reading the earlier output needs its claim mounted too.
    if source_uri.startswith("pvc://"):
        claim = source_uri[len("pvc://"):].split("/", 1)[0]
        pod = job["spec"]["template"]["spec"]
        if claim not in claims_of(step["spec"]):
            pod["volumes"].append({"name": "pvc-reuse", "persistentVolumeClaim": {
                "claimName": claim, "readOnly": True}})
            pod["containers"][0]["volumeMounts"].append(
                {"name": "pvc-reuse", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True})
    return job
