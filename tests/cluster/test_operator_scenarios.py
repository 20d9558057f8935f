"""The operator's promises on the real control plane: failures name their cause, thresholds
stop pods early, killed pods and a killed operator lose nothing and duplicate nothing,
suspend/resume, deletion, reuse, and the authenticated progress endpoint."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from prs_operator.builders import progress_token

from .controlplane import ControlPlane, free_port, wait_for
from .operator_process import OperatorProcess, grant_operator_rules, kubeconfig_for
from .pod_sandbox import call
from .step_scenarios import (
    ECHO_SCRIPT,
    calls,
    children,
    condition_true,
    create_step,
    output_lines,
    patch_step,
    pause,
    roles,
    running_pods,
    stage_step,
    status_of,
    step_document,
    wait_finished,
    wait_status,
)

pytestmark = pytest.mark.cluster


def script_line(text: str) -> int:
    """The line of ECHO_SCRIPT (score.py in the pods) that holds TEXT."""
    return next(n for n, line in enumerate(ECHO_SCRIPT.splitlines(), 1) if text in line)
NAMES = [f"item{n:04d}.txt" for n in range(200)]


def test_a_raising_script_fails_the_step_with_its_exception(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 4)
    create_step(control_plane, namespace, step_document(
        "raising", env={"SCENARIO_FAIL": ",".join(NAMES[:4])}))
    status = wait_finished(control_plane, namespace, "raising")
    assert condition_true(status, "Failed"), status
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "AllMiniBatchesFailed"
    assert "ValueError: cannot score item000" in status["message"]
    # ... and where the script raised it, the innermost frame of its traceback.
    assert f" at score.py:{script_line('raise ValueError')} in run" in status["message"]
    assert status["miniBatches"]["failed"] == 4


def test_init_failure_fails_the_step_as_init_failed(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 4)
    create_step(control_plane, namespace, step_document(
        "no-init", env={"SCENARIO_INIT_FAIL": "model file missing"}))
    status = wait_finished(control_plane, namespace, "no-init")
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "InitFailed", status
    assert "RuntimeError: model file missing" in status["message"]
    assert f" at score.py:{script_line('raise RuntimeError')} in init" in status["message"]


def test_crossing_a_threshold_fails_early_and_stops_every_pod(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 200)
    failing = [name for number, name in enumerate(NAMES) if number % 10 == 3]
    create_step(control_plane, namespace, step_document(
        "threshold", env={"SCENARIO_FAIL": ",".join(failing), "SCENARIO_DELAY": "0.1"},
        miniBatchErrorThreshold=2))
    status = wait_status(control_plane, namespace, "threshold", "Failed", 120,
                         lambda s: condition_true(s, "Failed"))
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ErrorThresholdExceeded", status
    assert "miniBatchErrorThreshold" in status["message"]
    assert "ValueError: cannot score" in status["message"]
    wait_for(lambda: not [p for p in running_pods(control_plane, namespace, "threshold")
                          if "-run-" in p], 15, "no run pod left running")
    final = wait_finished(control_plane, namespace, "threshold")
    assert final["miniBatches"]["succeeded"] < 180
    assert final["miniBatches"]["pending"] > 0


def test_a_deleted_runner_pod_is_retried_and_output_stays_exactly_once(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    claim = stage_step(control_plane, namespace, 60)
    create_step(control_plane, namespace, step_document(
        "pod-loss", env={"SCENARIO_DELAY": "0.2"}))
    live = wait_status(control_plane, namespace, "pod-loss", "live progress", 120,
                       lambda s: 4 <= (s.get("miniBatches") or {}).get("succeeded", 0) < 50)
    assert live["phase"] == "Running"  # live counts: the pods' reports were accepted
    victim = next(p for p in children(control_plane, namespace, "pod-loss", "pods")
                  if p["metadata"]["labels"]["parallelrun.io/role"] == "run"
                  and p["status"].get("phase") == "Running")
    # ... with a token the pod spec only points to: it is in the step's own Secret.
    [token] = [e for e in victim["spec"]["containers"][0]["env"]
               if e["name"] == "PRS_PROGRESS_TOKEN"]
    secret_name = token["valueFrom"]["secretKeyRef"]["name"]
    assert "value" not in token
    with control_plane.api_client() as api:
        secret = call(client.CoreV1Api(api).read_namespaced_secret, secret_name, namespace)
    step_uid = json.loads(control_plane.kubectl(
        "get", "prs/pod-loss", "-n", namespace, "-o", "json").stdout)["metadata"]["uid"]
    assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [step_uid]
    with control_plane.api_client() as api:
        call(client.CoreV1Api(api).delete_namespaced_pod, victim["metadata"]["name"], namespace)
    status = wait_finished(control_plane, namespace, "pod-loss")
    assert condition_true(status, "Complete"), status
    assert output_lines(claim, "pod-loss") == NAMES[:60]
    index = victim["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
    replacements = [p["metadata"]["name"] for p in children(
        control_plane, namespace, "pod-loss", "pods")
        if p["metadata"]["labels"]["parallelrun.io/role"] == "run"
        and p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == index]
    assert replacements and victim["metadata"]["name"] not in replacements


def test_an_operator_killed_mid_run_continues_without_a_second_job(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    claim = stage_step(control_plane, namespace, 60)
    create_step(control_plane, namespace, step_document(
        "restart", env={"SCENARIO_DELAY": "0.2"}))
    wait_status(control_plane, namespace, "restart", "running", 120,
                lambda s: (s.get("miniBatches") or {}).get("succeeded", 0) >= 2)
    run_uid = next(j["metadata"]["uid"] for j in children(control_plane, namespace, "restart",
                                                          "jobs")
                   if j["metadata"]["labels"]["parallelrun.io/role"] == "run")
    operator.stop(signal.SIGKILL)
    pause(3)
    operator.start()
    status = wait_finished(control_plane, namespace, "restart")
    assert condition_true(status, "Complete"), status
    jobs = children(control_plane, namespace, "restart", "jobs")
    assert roles(jobs) == ["merge", "plan", "run"]
    assert next(j["metadata"]["uid"] for j in jobs
                if j["metadata"]["labels"]["parallelrun.io/role"] == "run") == run_uid
    assert output_lines(claim, "restart") == NAMES[:60]


def test_suspend_stops_the_pods_and_resume_keeps_committed_work(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    claim = stage_step(control_plane, namespace, 40)
    create_step(control_plane, namespace, step_document(
        "pausing", env={"SCENARIO_DELAY": "0.2"}, suspend=True))
    wait_status(control_plane, namespace, "pausing", "Suspended", 60,
                lambda s: s.get("phase") == "Suspended" and condition_true(s, "Suspended"))
    pause(2)
    assert running_pods(control_plane, namespace, "pausing") == []
    patch_step(control_plane, namespace, "pausing", {"spec": {"suspend": False}})
    wait_status(control_plane, namespace, "pausing", "progress", 120,
                lambda s: (s.get("miniBatches") or {}).get("succeeded", 0) >= 6)
    patch_step(control_plane, namespace, "pausing", {"spec": {"suspend": True}})
    wait_for(lambda: not running_pods(control_plane, namespace, "pausing"), 30,
             "no pod once suspended")
    done_before = status_of(control_plane, namespace, "pausing")["miniBatches"]["succeeded"]
    calls_dir = claim / "out" / "pausing" / "calls"
    marks_before = {path.name for path in calls_dir.iterdir()}  # one per run() call begun
    started_before = {name.split("-")[0] for name in marks_before}
    patch_step(control_plane, namespace, "pausing", {"spec": {"suspend": False}})
    status = wait_finished(control_plane, namespace, "pausing")
    assert condition_true(status, "Complete"), status
    assert output_lines(claim, "pausing") == NAMES[:40]
    # Committed work is kept: what runs again after the resume is at most what had begun
    # and was not yet counted done when the pods stopped (in flight, or run twice by a
    # shard taking over another's tail; the count may lag the commits, never lead them).
    begun_after = Counter(path.name.split("-")[0] for path in calls_dir.iterdir()
                          if path.name not in marks_before)
    redone = sorted(batch for batch in begun_after if batch in started_before)
    assert len(redone) <= max(len(started_before) - done_before, 0), (
        f"redone after resume: {redone} (begun before: {len(started_before)}, "
        f"done before: {done_before})")


def test_a_queued_run_follows_kueues_protocol(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    """Kueue's protocol for batch/v1 Jobs, with this test in Kueue's place (Kueue's
    controller does not run here): the queued run Job is created suspended, only "Kueue"
    resumes it (admission) or suspends it (eviction), and the operator waits meanwhile."""
    stage_step(control_plane, namespace, 30)
    create_step(control_plane, namespace, step_document(
        "queued", env={"SCENARIO_DELAY": "1.0"},  # 15 s per shard: time to evict mid-run
        labels={"kueue.x-k8s.io/queue-name": "team-a"}))
    wait_for(lambda: "run" in roles(children(control_plane, namespace, "queued", "jobs")), 60,
             "the run Job")
    jobs = children(control_plane, namespace, "queued", "jobs")
    # Kueue's label is on the run Job only: one Workload per step.
    queues = {j["metadata"]["labels"]["parallelrun.io/role"]:
              j["metadata"]["labels"].get("kueue.x-k8s.io/queue-name") for j in jobs}
    assert queues == {"plan": None, "run": "team-a"}
    run = next(j for j in jobs if j["metadata"]["name"] == "queued-run")
    assert run["spec"]["suspend"] is True, "a queued Job is created suspended"
    waiting = wait_status(control_plane, namespace, "queued", "Suspended", 30,
                          lambda s: s.get("phase") == "Suspended")
    suspended = next(c for c in waiting["conditions"] if c["type"] == "Suspended")
    assert suspended["reason"] == "AwaitingAdmission", suspended
    pause(4)
    with control_plane.api_client() as api:
        batch = client.BatchV1Api(api)
        job = call(batch.read_namespaced_job, "queued-run", namespace)
        assert job["spec"]["suspend"] is True, "the operator resumed a Job Kueue had not admitted"
        call(batch.patch_namespaced_job, "queued-run", namespace, {"spec": {"suspend": False}})
        wait_status(control_plane, namespace, "queued", "progress", 120,
                    lambda s: (s.get("miniBatches") or {}).get("succeeded", 0) >= 3)
        call(batch.patch_namespaced_job, "queued-run", namespace, {"spec": {"suspend": True}})
        wait_status(control_plane, namespace, "queued", "evicted", 30,
                    lambda s: s.get("phase") == "Suspended")
        pause(4)
        job = call(batch.read_namespaced_job, "queued-run", namespace)
        assert job["spec"]["suspend"] is True, "the operator resumed an evicted Job"
        call(batch.patch_namespaced_job, "queued-run", namespace, {"spec": {"suspend": False}})
    assert condition_true(wait_finished(control_plane, namespace, "queued"), "Complete")


def test_an_identical_step_reuses_the_result_without_running(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    claim = stage_step(control_plane, namespace, 8)
    create_step(control_plane, namespace, step_document("first"))
    assert condition_true(wait_finished(control_plane, namespace, "first"), "Complete")
    second = step_document("second")
    second["spec"]["nodeCount"] = 1  # how it runs does not change what it computes
    create_step(control_plane, namespace, second)
    status = wait_finished(control_plane, namespace, "second")
    assert condition_true(status, "Complete") and condition_true(status, "Reused"), status
    assert status["reusedFrom"] == "first"
    assert status["fingerprint"] == status_of(control_plane, namespace, "first")["fingerprint"]
    assert roles(children(control_plane, namespace, "second", "jobs")) == ["plan", "reuse"]
    assert output_lines(claim, "second") == output_lines(claim, "first") == NAMES[:8]
    assert status["items"]["succeeded"] == 8


def test_deleting_a_step_deletes_its_jobs_and_pods(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 4)
    create_step(control_plane, namespace, step_document("doomed"))
    wait_finished(control_plane, namespace, "doomed")
    assert children(control_plane, namespace, "doomed", "jobs")
    stored = control_plane.kubectl("get", "prs/doomed", "-n", namespace, "-o", "json").stdout
    assert not json.loads(stored)["metadata"].get("finalizers"), "deletable with no operator"
    control_plane.kubectl("delete", "prs/doomed", "-n", namespace, "--wait=true")
    wait_for(lambda: not children(control_plane, namespace, "doomed", "jobs")
             and not children(control_plane, namespace, "doomed", "pods"), 60,
             "children garbage-collected")


def test_a_recreated_step_runs_for_itself_and_never_adopts_its_predecessors_jobs(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    claim = stage_step(control_plane, namespace, 4)
    create_step(control_plane, namespace, step_document("again", allowReuse=False))
    assert condition_true(wait_finished(control_plane, namespace, "again"), "Complete")
    first = calls(claim, "again")
    assert len(first) == 4
    # What `prs submit` tells users to do: delete the step and create it again. The old
    # Jobs are still there when the new step appears (garbage collection runs after).
    control_plane.kubectl("delete", "prs/again", "-n", namespace, "--wait=false")
    wait_for(lambda: not control_plane.kubectl("get", "prs", "-n", namespace, "-o",
                                               "name").stdout.strip(), 30, "step deleted")
    create_step(control_plane, namespace, step_document("again", allowReuse=False))
    status = wait_finished(control_plane, namespace, "again")
    assert condition_true(status, "Complete"), status
    assert len(calls(claim, "again")) == 8, "the new step ran every mini-batch itself"
    stored = json.loads(control_plane.kubectl("get", "prs/again", "-n", namespace, "-o",
                                              "json").stdout)
    uid = stored["metadata"]["uid"]
    jobs = children(control_plane, namespace, "again", "jobs")
    assert jobs and all(job["metadata"]["ownerReferences"][0]["uid"] == uid for job in jobs)
    assert output_lines(claim, "again") == NAMES[:4]


def test_a_job_the_api_server_rejects_fails_the_step_with_its_words(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 2)
    # The CRD keeps `resources` as given; the Job's validation refuses the quantity.
    create_step(control_plane, namespace, step_document(
        "refused", resources={"limits": {"cpu": "lots"}}))
    status = wait_finished(control_plane, namespace, "refused", timeout=120)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "JobRejected"), status
    # The quantity does not even decode: 400 BadRequest, which no retry heals either.
    assert status["message"].startswith("the API server refused Job refused-run (400 "
                                        "BadRequest): "), status["message"]
    assert "quantities must match" in status["message"]
    events = control_plane.kubectl("get", "events", "-n", namespace, "--field-selector",
                                   "reason=FailedCreate", "-o", "json").stdout
    assert any(item["type"] == "Warning" and "quantities must match" in item["message"]
               for item in json.loads(events)["items"])


def post_report(operator: OperatorProcess, payload: dict[str, Any], token: str) -> int:
    request = urllib.request.Request(
        f"{operator.url}/v1/progress", data=json.dumps(payload).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_progress_reports_need_the_steps_token(operator: OperatorProcess) -> None:
    key = (operator.workdir / "progress.key").read_bytes().strip()
    step = {"namespace": "ns", "name": "step", "uid": "1234"}
    report = {"shard": 0, "counts": {"miniBatchesSucceeded": 1}}
    genuine = progress_token(key, "ns", "step", "1234")
    assert post_report(operator, {**step, "report": report}, genuine) == 200
    assert post_report(operator, {**step, "report": report}, "0" * 64) == 401
    other = progress_token(key, "ns", "other-step", "1234")
    assert post_report(operator, {**step, "report": report}, other) == 401
    assert post_report(operator, {**step, "report": report}, "") == 401
    metrics = operator.metrics()
    assert 'parallelrunstep_progress_reports_total{result="rejected"}' in metrics
    assert "parallelrunstep_reconcile_duration_seconds_count" in metrics


def test_without_progress_reports_the_final_counts_come_from_termination_messages(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """An operator whose pods cannot reach its endpoint (a closed port) still finishes the
    step with the right counts. It watches a namespace of its own, outside the session
    operator's t-*."""
    space = f"quiet-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", space)
    control_plane.wait_for_service_account(space)
    unreachable = f"http://127.0.0.1:{free_port()}/v1/progress"
    quiet = OperatorProcess(grant_operator_rules(control_plane, tmp_path), tmp_path, space,
                            unreachable)
    quiet.start()
    try:
        claim = stage_step(control_plane, space, 12)
        create_step(control_plane, space, step_document(
            "quiet", env={"SCENARIO_FAIL": "item0005.txt"}))
        status = wait_finished(control_plane, space, "quiet")
    finally:
        quiet.stop()
        control_plane.kubectl("delete", "namespace", space, "--wait=false", check=False)
    assert condition_true(status, "Complete"), status
    report = json.loads((claim / "out" / "quiet" / "_prs" / "report" /
                         "job_result.json").read_text())
    assert status["miniBatches"] == report["miniBatches"]
    assert status["miniBatches"]["failed"] == 1 and status["items"]["succeeded"] == 11


def test_a_changed_progress_key_is_used_without_a_restart(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The chart mounts the key from a Secret, which the kubelet swaps in place when it
    changes. A second operator (watching a namespace with no steps) serves the endpoint."""
    watcher = OperatorProcess(control_plane.kubeconfig, tmp_path, "prs-no-steps-here")
    watcher.start()
    try:
        key_file = tmp_path / "progress.key"
        step = {"namespace": "ns", "name": "step", "uid": "1234"}
        body = {**step, "report": {"shard": 0, "counts": {"miniBatchesSucceeded": 1}}}

        def token(key: bytes) -> str:
            return progress_token(key, "ns", "step", "1234")

        def swap(key: bytes) -> None:
            fresh = tmp_path / "progress.key.new"
            fresh.write_bytes(key)
            fresh.replace(key_file)

        first = key_file.read_bytes().strip()
        assert post_report(watcher, body, token(first)) == 200
        swap(b"second-key")
        assert post_report(watcher, body, token(b"second-key")) == 200
        assert post_report(watcher, body, token(first)) == 200, "pods started before the change"
        swap(b"third-key")
        assert post_report(watcher, body, token(first)) == 401, "only one key back"
        assert post_report(watcher, body, token(b"third-key")) == 200
    finally:
        watcher.stop()


def test_an_operator_without_its_permissions_is_live_but_not_ready(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """/healthz: the operator's loop runs; /readyz: it also reached the API server with its
    own credentials. A service account with no grants is the second without the first."""
    control_plane.wait_for_service_account(namespace)
    kubeconfig = kubeconfig_for(control_plane, namespace, "default", tmp_path / "bare.kubeconfig")
    bare = OperatorProcess(kubeconfig, tmp_path, namespace)
    bare.start()
    try:
        assert bare.healthy()
        pause(8)
        assert not bare.ready()
        assert "not ready: cannot list ParallelRunSteps" in bare.log_tail(200)
    finally:
        bare.stop()


def test_the_session_operator_is_ready(operator: OperatorProcess) -> None:
    wait_for(operator.ready, 30, "operator /readyz")



def test_shards_no_node_fits_are_listed_and_end_the_step_after_startup_timeout(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    """A node selector no node has (a GPU pool that is not there): the shard pods stay
    Pending and Unschedulable. The step lists them in status.shards.table with the
    scheduler's reason, then fails with PodsNotStarting after startupTimeout."""
    stage_step(control_plane, namespace, 4)
    create_step(control_plane, namespace, step_document(
        "stuck", startupTimeout=20, podTemplate={"nodeSelector": {"pool": "gpu-a100"}}))
    listed = wait_status(control_plane, namespace, "stuck", "the shard table", 90,
                         lambda s: len((s.get("shards") or {}).get("table") or []) == 2)
    rows = listed["shards"]["table"]
    assert [(r["shard"], r["phase"], r["reason"], r["restarts"]) for r in rows] == [
        (0, "Pending", "Unschedulable", 0), (1, "Pending", "Unschedulable", 0)]
    assert "didn't match Pod's node affinity/selector" in rows[0]["message"]
    assert "Unschedulable" in listed["message"]
    status = wait_finished(control_plane, namespace, "stuck", timeout=120)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodsNotStarting", status
    assert "startupTimeout=20" in status["message"]
    wait_for(lambda: not children(control_plane, namespace, "stuck", "pods") or all(
        p["metadata"]["labels"]["parallelrun.io/role"] != "run"
        for p in children(control_plane, namespace, "stuck", "pods")), 60, "run pods gone")


def test_namespaces_that_come_and_go_at_once_do_not_stall_the_operator(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    """Watched namespaces deleted right after they were created (a CI job's, a careless
    script's): their watches stop before their first listing ends. Steps in other namespaces
    are still reconciled at once."""
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        for _ in range(12):
            name = f"t-gone-{uuid.uuid4().hex[:8]}"
            call(core.create_namespace, {"metadata": {"name": name}})
            call(core.delete_namespace, name)
    stage_step(control_plane, namespace, 2)
    create_step(control_plane, namespace, step_document("after-flash"))
    status = wait_finished(control_plane, namespace, "after-flash", timeout=120)
    assert condition_true(status, "Complete"), operator.log_tail()
