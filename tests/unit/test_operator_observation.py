"""What the operator keeps of its Jobs and pods (pure): small views of the API objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prs_operator.observation import JobView, PodView, parse_message, view_job, view_pod

JOB_METADATA = {"name": "step-run", "namespace": "ns", "uid": "j-1",
                "labels": {"parallelrun.io/step": "step", "parallelrun.io/role": "run",
                           "app.kubernetes.io/managed-by": "parallelrun-operator"}}


def job_body(status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job",
                            "metadata": {**JOB_METADATA, **metadata},
                            "spec": {"suspend": False, "completionMode": "Indexed"}}
    if status is not None:
        body["status"] = status
    return body


def condition(kind: str, status: str = "True", **fields: str) -> dict[str, str]:
    return {"type": kind, "status": status, "lastTransitionTime": "2024-05-01T10:00:00Z",
            **fields}


@pytest.mark.parametrize(("body", "expected"), [
    (job_body(), JobView("step-run", "run", uid="j-1")),
    (job_body({"active": 3, "succeeded": 2, "failed": 1, "ready": 3}),
     JobView("step-run", "run", uid="j-1", active=3, succeeded=2, failed=1)),
    (job_body({"succeeded": 4, "conditions": [
        condition("SuccessCriteriaMet"), condition("Complete")]}),
     JobView("step-run", "run", uid="j-1", succeeded=4, complete=True)),
    (job_body({"failed": 1, "conditions": [
        condition("FailureTarget", reason="PodFailurePolicy"),
        condition("Failed", reason="PodFailurePolicy",
                  message="Container runner for pod ns/step-run-0-x failed with exit code 3")]}),
     JobView("step-run", "run", uid="j-1", failed=1, failed_reason="PodFailurePolicy",
             failed_message="Container runner for pod ns/step-run-0-x failed with exit code 3")),
    (job_body({"conditions": [condition("Failed")]}),
     JobView("step-run", "run", uid="j-1", failed_reason="Failed")),
    (job_body({"conditions": [condition("Failed", "False", reason="BackoffLimitExceeded"),
                              condition("Complete", "False"), condition("Suspended")]}),
     JobView("step-run", "run", uid="j-1")),
    (job_body({"active": None, "conditions": None}), JobView("step-run", "run", uid="j-1")),
    ({"metadata": {"name": "step-merge"}}, JobView("step-merge", "")),
    ({"metadata": {"name": "x", "labels": None, "annotations": None}, "spec": None,
      "status": None}, JobView("x", "")),
], ids=["new", "counts", "complete", "failed-by-policy", "failed-without-reason",
        "false-conditions-ignored", "null-fields", "no-spec-no-status", "all-null"])
def test_a_job_is_reduced_to_its_counts_and_terminal_conditions(
    body: dict[str, Any], expected: JobView
) -> None:
    assert view_job(body) == expected


@pytest.mark.parametrize(("suspend", "annotations", "suspended", "by_step"), [
    (True, {"parallelrun.io/suspended-by-step": "true"}, True, True),
    (True, {}, True, False),  # Kueue suspended it, not the step
    (False, {"parallelrun.io/suspended-by-step": "true"}, False, True),
    (True, {"parallelrun.io/suspended-by-step": "false"}, True, False),
], ids=["by-step", "by-kueue", "resumed", "annotation-false"])
def test_a_job_tells_who_suspended_it(
    suspend: bool, annotations: dict[str, str], suspended: bool, by_step: bool
) -> None:
    body = job_body(annotations=annotations)
    body["spec"]["suspend"] = suspend
    view = view_job(body)
    assert (view.suspended, view.suspended_by_step) == (suspended, by_step)


@pytest.mark.parametrize(("labels", "queue"), [
    ({"kueue.x-k8s.io/queue-name": "team-a"}, "team-a"),
    ({"kueue.x-k8s.io/priority-class": "high"}, ""),
    (None, ""),
])
def test_a_job_tells_its_kueue_queue(labels: dict[str, str] | None, queue: str) -> None:
    body = job_body()
    body["metadata"]["labels"] = labels
    assert view_job(body).queue == queue


@pytest.mark.parametrize(("view", "finished"), [
    (JobView("j", "run"), False),
    (JobView("j", "run", complete=True), True),
    (JobView("j", "run", failed_reason="DeadlineExceeded"), True),
])
def test_a_job_is_finished_once_complete_or_failed(view: JobView, finished: bool) -> None:
    assert view.finished is finished


MESSAGE = {"shard": 2, "outcome": "fatal", "error": "entry script raised"}


def pod_body(*statuses: dict[str, Any], phase: str | None = "Failed",
             index: str | None = "2") -> dict[str, Any]:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": index}
    status: dict[str, Any] = {"containerStatuses": list(statuses)}
    if phase is not None:
        status["phase"] = phase
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "step-run-2-abcde", "namespace": "ns",
                         "labels": {"parallelrun.io/role": "run",
                                    "batch.kubernetes.io/job-name": "step-run"},
                         "annotations": annotations},
            "status": status}


def runner(state: dict[str, Any]) -> dict[str, Any]:
    return {"name": "runner", "image": "runner:1", "ready": False, "restartCount": 0,
            "state": state}


def terminated(exit_code: int, message: str | None = None, reason: str = "Error"
               ) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code, "reason": reason,
                             "startedAt": "2024-05-01T10:00:00Z"}
    if message is not None:
        state["message"] = message
    return runner({"terminated": state})


@pytest.mark.parametrize(("body", "expected"), [
    (pod_body(terminated(3, json.dumps(MESSAGE))),
     PodView("step-run-2-abcde", "run", 2, "Failed", 3, MESSAGE, "",  # parsed: no raw copy
             reason="Error", started=True)),
    (pod_body(terminated(0, "", reason="Completed"), phase="Succeeded"),
     PodView("step-run-2-abcde", "run", 2, "Succeeded", 0, None, "", reason="Completed",
             started=True)),
    (pod_body(terminated(137, reason="OOMKilled")),
     PodView("step-run-2-abcde", "run", 2, "Failed", 137, None, "", reason="OOMKilled",
             started=True)),
    (pod_body(terminated(1, "Traceback (most recent call last):\n  boom")),
     PodView("step-run-2-abcde", "run", 2, "Failed", 1, None,
             "Traceback (most recent call last):\n  boom", reason="Error", started=True)),
    (pod_body(terminated(1, "[1, 2]")),
     PodView("step-run-2-abcde", "run", 2, "Failed", 1, None, "[1, 2]", reason="Error",
             started=True)),
    (pod_body(runner({"running": {"startedAt": "2024-05-01T10:00:00Z"}}), phase="Running"),
     PodView("step-run-2-abcde", "run", 2, "Running", None, None, "", started=True)),
    (pod_body(runner({"waiting": {"reason": "ContainerCreating"}}), phase=None),
     PodView("step-run-2-abcde", "run", 2, "Pending", None, None, "",
             waiting="ContainerCreating")),
    (pod_body(runner({}), runner({"terminated": {"exitCode": 3, "message": "{}"}}), index="0"),
     PodView("step-run-2-abcde", "run", 0, "Failed", 3, {}, "", started=True)),
    (pod_body(terminated(1), index="x1"),
     PodView("step-run-2-abcde", "run", None, "Failed", 1, None, "", reason="Error",
             started=True)),
    (pod_body(terminated(1), index=None),
     PodView("step-run-2-abcde", "run", None, "Failed", 1, None, "", reason="Error",
             started=True)),
    ({"metadata": {"name": "p"}}, PodView("p", "", None, "Pending", None, None, "")),
    ({"metadata": {"name": "p", "labels": None, "annotations": None},
      "status": {"containerStatuses": None}}, PodView("p", "", None, "Pending", None, None, "")),
], ids=["runner-json-message", "succeeded-empty-message", "oom-killed-no-message",
        "garbage-message", "json-but-not-an-object", "running", "waiting-no-phase",
        "last-terminated-container", "garbage-index", "no-index", "bare-pod", "null-fields"])
def test_a_pod_is_reduced_to_its_index_exit_code_and_termination_message(
    body: dict[str, Any], expected: PodView
) -> None:
    assert view_pod(body) == expected


def test_only_the_tail_of_a_long_raw_message_is_kept() -> None:
    text = "a" * 1000 + "".join(f"{n:04d}" for n in range(500))  # 3000 characters
    view = view_pod(pod_body(terminated(1, text)))
    assert view.raw_message == text[1000:] and len(view.raw_message) == 2000
    assert view.message is None


@pytest.mark.parametrize(("text", "expected"), [
    ('{"shard": 1, "outcome": "ok"}', {"shard": 1, "outcome": "ok"}),
    ("{}", {}),
    ("", None),
    ("null", None),
    ('"fatal"', None),
    ("[]", None),
    ("{truncated", None),
])
def test_only_a_json_object_is_a_termination_message(
    text: str, expected: dict[str, Any] | None
) -> None:
    assert parse_message(text) == expected
