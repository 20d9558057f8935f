"""The thin Kubernetes I/O layer: every API call the operator makes, and nothing else.

Calls are synchronous (the `kubernetes` client) and run in worker threads. The typed client
wants V1 models; plain dicts are what the builders produce and what the API accepts, so the
API objects are held as Any here and nowhere else."""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from prs_operator.actions import Action, CreateJob, DeleteJob, Event, SetJobSuspended
from prs_operator.observation import ANNOTATION_SUSPENDED_BY_STEP, LABEL_STEP

GROUP, VERSION, PLURAL = "parallelrun.io", "v1alpha1", "parallelrunsteps"
COMPONENT = "parallelrun-operator"
# Seconds to connect and to wait for each read of a response. The client has no timeout of its
# own: a connection the network dropped without a reset would block a worker thread forever,
# and once every thread of the pool waits so, every pass of every step waits with them.
REQUEST_TIMEOUT = (10.0, 60.0)


class CreateRejected(Exception):
    """The API server refused a Job: its status code, reason and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


class Timed:
    """An API group whose every call carries the request timeout."""

    def __init__(self, api: Any, timeout: tuple[float, float]) -> None:
        self.api, self.timeout = api, timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.api, name)
        return functools.partial(method, _request_timeout=self.timeout)


def api_reason(error: ApiException) -> tuple[str, str]:
    """(reason, message) from the API's Status body, or what the exception says."""
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    # A proxy's HTML error page is no Status: its first line stands for it, not 24 KB.
    raw = str(error.body or "").strip().split("\n", 1)[0][:RAW_BODY_CHARS]
    return (str(body.get("reason") or error.reason or "Error"),
            str(body.get("message") or raw or error.reason or ""))


RAW_BODY_CHARS = 200


class Cluster:
    def __init__(self, api: client.ApiClient,
                 timeout: tuple[float, float] = REQUEST_TIMEOUT) -> None:
        self.batch: Any = Timed(client.BatchV1Api(api), timeout)
        self.core: Any = Timed(client.CoreV1Api(api), timeout)
        self.custom: Any = Timed(client.CustomObjectsApi(api), timeout)

    def apply(self, namespace: str, action: Action) -> bool:
        """Carry out one action; False when it found nothing to do (409/404)."""
        try:
            if isinstance(action, CreateJob):
                if action.secret is not None:
                    self.put_secret(namespace, action.secret)
                self.batch.create_namespaced_job(namespace, action.manifest)
            elif isinstance(action, SetJobSuspended):
                annotation = "true" if action.suspend else None
                self.batch.patch_namespaced_job(action.name, namespace, {
                    "metadata": {"annotations": {ANNOTATION_SUSPENDED_BY_STEP: annotation}},
                    "spec": {"suspend": action.suspend}})
            elif isinstance(action, DeleteJob):
                preconditions = {"uid": action.uid} if action.uid else None
                self.batch.delete_namespaced_job(
                    action.name, namespace, propagation_policy="Background",
                    body={"preconditions": preconditions} if preconditions else None)
        except ApiException as error:
            if error.status in (404, 409):
                return False
            if isinstance(action, CreateJob) and error.status is not None:
                raise CreateRejected(error.status, *api_reason(error)) from None
            raise
        return True

    def job_uids(self, namespace: str, step: str) -> set[str]:
        """The UIDs of the Jobs labelled as STEP's that exist now (a consistent list)."""
        found = self.batch.list_namespaced_job(namespace, label_selector=f"{LABEL_STEP}={step}")
        return {job.metadata.uid for job in found.items}

    def list_steps_once(self, namespaces: tuple[str, ...]) -> None:
        """One small list of steps where the operator watches: proof that the API server is
        reachable and the credentials and RBAC work (raises otherwise)."""
        plain = [n for n in namespaces if "*" not in n]
        if plain:
            self.custom.list_namespaced_custom_object(GROUP, VERSION, plain[0], PLURAL, limit=1)
        elif not namespaces:
            self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
        # only globs: kopf finds the namespaces; its watch errors are logged

    def put_secret(self, namespace: str, secret: Mapping[str, Any]) -> None:
        """Create the Secret, or bring an existing one (ours: its name holds the step's UID)
        up to date, e.g. after the operator's key changed. A refusal is the Job's refusal."""
        try:
            self.core.create_namespaced_secret(namespace, dict(secret))
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.patch_namespaced_secret(secret["metadata"]["name"], namespace,
                                              {"stringData": secret["stringData"]})

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)})
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing left to report on
                raise

    def record_event(self, step: Mapping[str, Any], event: Event) -> None:
        metadata = step["metadata"]
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "metadata": {"generateName": f"{metadata['name']}.", "namespace":
                         metadata["namespace"]},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ParallelRunStep",
                               "name": metadata["name"], "namespace": metadata["namespace"],
                               "uid": metadata["uid"]},
            "reason": event.reason, "message": event.message[:1024], "type": event.type,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            self.core.create_namespaced_event(metadata["namespace"], body)
        except ApiException as error:
            if error.status not in (403, 404):  # events are best-effort
                raise
