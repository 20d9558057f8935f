"""`prs status`: the rows made of a step's pods (as the API returns them) and the end of their
logs, the pods that belong to the step, and the text and JSON forms. Table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prs_operator.step_overview import (
    Overview,
    PodRow,
    last_plain_line,
    last_report,
    overview,
    owned_pods,
    pod_rows,
    render_json,
    render_text,
)

REPORT = json.dumps({"shard": 0, "counts": {"miniBatchesSucceeded": 3, "miniBatchesFailed": 1},
                     "final": False})


def pod(name: str, role: str = "run", index: int | None = 0, phase: str = "Running",
        created: str = "2026-01-01T00:00:00Z", node: str = "node-a", owner: str = "job-uid",
        container: dict[str, Any] | None = None) -> dict[str, Any]:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index":
                                            str(index)}
    state = container if container is not None else (
        {"running": {}} if phase == "Running" else {})
    return {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations,
                     "labels": {"parallelrun.io/step": "s", "parallelrun.io/role": role},
                     "ownerReferences": [{"uid": owner, "controller": True}]},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "runner", "state": state, "restartCount": 0}]},
    }


def ended(exit_code: int, message: str = "", reason: str = "Completed") -> dict[str, Any]:
    return {"terminated": {"exitCode": exit_code, "message": message, "reason": reason}}


@pytest.mark.parametrize(("pods", "tails", "rows"), [
    pytest.param([pod("s-run-0")], {}, [PodRow("0", "s-run-0", "node-a", "Running", "", 0, None,
                                               "")], id="running, no log read: done unknown"),
    pytest.param([pod("s-run-0")], {"s-run-0": f"loading model\n{REPORT}\n"},
                 [PodRow("0", "s-run-0", "node-a", "Running", "", 0, 4, "loading model")],
                 id="running: counts and the last words from the log"),
    pytest.param([pod("s-run-1", index=1, phase="Succeeded", container=ended(0, json.dumps(
        {"status": "succeeded", "message": "done", "counts": {"miniBatchesSucceeded": 7}})))],
        {}, [PodRow("1", "s-run-1", "node-a", "Succeeded", "Completed", 0, 7, "done")],
        id="ended: the termination message's counts"),
    pytest.param([pod("s-run-0", phase="Pending", node="", container={"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image x"}})], {},
        [PodRow("0", "s-run-0", "", "Pending", "ImagePullBackOff", 0, None,
                "Back-off pulling image x")], id="waiting to start"),
    pytest.param([pod("s-run-0", phase="Failed", container=ended(137, "", "OOMKilled"))], {},
                 [PodRow("0", "s-run-0", "node-a", "Failed", "OOMKilled", 0, None,
                         "exit code 137")], id="oom-killed"),
    pytest.param([pod("s-run-0", phase="Failed", container=ended(3, json.dumps(
        {"reason": "InitFailed", "message": "init() failed: no GPU"}), "Error"))], {},
        [PodRow("0", "s-run-0", "node-a", "Failed", "InitFailed", 0, None,
                "init() failed: no GPU")], id="failed with the runner's reason"),
    pytest.param([pod("s-run-3-b", index=3, created="2026-01-01T00:01:00Z"),
                  pod("s-run-3-a", index=3, phase="Failed", container=ended(1, "boom", "Error"))],
                 {}, [PodRow("3", "s-run-3-b", "node-a", "Running", "", 1, None, "")],
                 id="retried: the newest pod, the earlier counted as a restart"),
    pytest.param([pod("s-merge", role="merge", index=None), pod("s-run-1", index=1),
                  pod("s-plan", role="plan", index=None, phase="Succeeded",
                      container=ended(0, "listed 4 files")), pod("s-run-0")], {},
                 [PodRow("plan", "s-plan", "node-a", "Succeeded", "Completed", 0, None,
                         "listed 4 files"),
                  PodRow("0", "s-run-0", "node-a", "Running", "", 0, None, ""),
                  PodRow("1", "s-run-1", "node-a", "Running", "", 0, None, ""),
                  PodRow("merge", "s-merge", "node-a", "Running", "", 0, None, "")],
                 id="plan first, shards by index, merge last"),
])
def test_pod_rows(pods: list[dict[str, Any]], tails: dict[str, str], rows: list[PodRow]) -> None:
    assert pod_rows(pods, tails) == rows


def test_container_restarts_add_to_earlier_pods() -> None:
    body = pod("s-run-0")
    body["status"]["containerStatuses"][0]["restartCount"] = 2
    assert pod_rows([body], {})[0].restarts == 2


@pytest.mark.parametrize(("tail", "report", "plain"), [
    ("", None, ""),
    ("hello\n", None, "hello"),
    (f"{REPORT}\nscoring batch 4\n", json.loads(REPORT), "scoring batch 4"),
    (f"{REPORT}\n{{not json\n", json.loads(REPORT), "{not json"),
    ('{"no": "counts"}\n', None, ""),
])
def test_log_tail(tail: str, report: dict[str, Any] | None, plain: str) -> None:
    assert (last_report(tail), last_plain_line(tail)) == (report, plain)


def test_only_the_pods_of_the_steps_own_jobs() -> None:
    step = {"metadata": {"name": "s", "uid": "step-uid"}}
    jobs = [{"metadata": {"uid": "mine", "ownerReferences": [{"uid": "step-uid",
                                                               "controller": True}]}},
            {"metadata": {"uid": "old", "ownerReferences": [{"uid": "deleted-step",
                                                              "controller": True}]}}]
    pods = [pod("a", owner="mine"), pod("b", owner="old"), pod("c", owner="")]
    assert [p["metadata"]["name"] for p in owned_pods(step, jobs, pods)] == ["a"]


STEP: dict[str, Any] = {"metadata": {"name": "score", "namespace": "team"},
        "status": {"phase": "Running", "progress": "3/10", "eta": "1m10s",
                   "message": "3/10 mini-batches done",
                   "miniBatches": {"total": 10, "succeeded": 3, "failed": 0, "pending": 7},
                   "items": {"total": 100, "succeeded": 30, "failed": 0}}}


def test_text_form() -> None:
    text = render_text(overview(STEP, [pod("score-run-0-x")],
                                {"score-run-0-x": f"{REPORT}\nworking"}))
    assert text.splitlines() == [
        "score (team): Running, 3/10 mini-batches, about 1m10s left",
        "  3/10 mini-batches done",
        "  mini-batches: 3 succeeded, 0 failed, 7 pending (10 total)",
        "  items: 30 succeeded, 0 failed (100 total)",
        "",
        "SHARD   POD             NODE     PHASE     REASON   RESTARTS   DONE   MESSAGE",
        "0       score-run-0-x   node-a   Running   -        0          4      working",
    ]


def test_a_step_without_pods_or_status_says_so() -> None:
    text = render_text(overview({"metadata": {"name": "new", "namespace": "ns"}}, [], {}))
    assert text.splitlines() == [
        "new (ns): Pending", "  no pods (yet, or no longer: ttlSecondsAfterFinished)"]


def test_json_form_holds_the_same() -> None:
    view = overview(STEP, [pod("score-run-0-x")], {})
    parsed = json.loads(render_json(view))
    assert parsed == {
        "name": "score", "namespace": "team", "phase": "Running", "progress": "3/10",
        "eta": "1m10s", "message": "3/10 mini-batches done",
        "miniBatches": STEP["status"]["miniBatches"], "items": STEP["status"]["items"],
        "pods": [{"shard": "0", "pod": "score-run-0-x", "node": "node-a", "phase": "Running",
                  "reason": "", "restarts": 0, "done": None, "message": ""}]}
    assert isinstance(view, Overview)


def test_a_long_message_is_cut_in_the_table_only() -> None:
    long = "x" * 200
    view = overview(STEP, [pod("p", phase="Failed", container=ended(1, long, "Error"))], {})
    assert render_text(view).splitlines()[-1].endswith("x" * 77 + "...")
    assert json.loads(render_json(view))["pods"][0]["message"] == long
