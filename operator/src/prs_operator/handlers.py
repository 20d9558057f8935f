"""kopf wiring only: indexes keep small views of steps, Jobs and pods; every event of a step
or of one of its children triggers a reconcile pass of that step."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import kopf
from kubernetes import client, config

from prs_operator.builders import RunnerSettings
from prs_operator.http_endpoint import build_app, start_server
from prs_operator.kube import GROUP, PLURAL, REQUEST_TIMEOUT, VERSION, Cluster, Timed
from prs_operator.leader_lease import LeaseLock, lead
from prs_operator.metrics import Metrics
from prs_operator.observation import LABEL_STEP, ReuseSource, view_job, view_pod
from prs_operator.progress import ProgressBook, Report
from prs_operator.progress_key import ProgressKey
from prs_operator.progress_key_secret import stored_key
from prs_operator.reconciler import Indexes, Reconciler
from prs_operator.settings import Settings, from_process_env
from prs_operator.task_dump import install as install_task_dump

CHILD_LABELS = {LABEL_STEP: kopf.PRESENT}
READY_RETRY_SECONDS = 5.0
state: dict[str, Any] = {}


def reconciler() -> Reconciler:
    return state["reconciler"]  # type: ignore[no-any-return]


@kopf.on.startup()
async def start(
    settings: kopf.OperatorSettings, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    # Annotations only: the CRD's status schema has no room for kopf's own bookkeeping.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.enabled = False  # our own events carry the step's reasons
    settings.watching.server_timeout = 300
    # The server ends each watch after 300 s; a watch still open 30 s later lost its
    # connection without a word, and waiting on it would hide every event from then on.
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.connect_timeout = 10
    # Server-side filters: the API server sends only the step's own Jobs and pods (not every
    # pod of the cluster), and the first list comes in pages of 500.
    settings.watching.label_selectors["batch", "jobs"] = LABEL_STEP
    settings.watching.label_selectors["v1", "pods"] = LABEL_STEP
    settings.watching.chunk_size = 500
    install_task_dump(asyncio.get_running_loop())
    operator = state["settings"] if "settings" in state else from_process_env()
    state["settings"] = operator
    load_config()
    metrics, book = Metrics(), ProgressBook()
    keys = ProgressKey(operator.progress_key_file, operator.progress_key)
    cluster = Cluster(client.ApiClient())
    state["reconciler"] = Reconciler(
        cluster,
        RunnerSettings(operator.runner_image, operator.progress_url, operator.progress_key),
        book, metrics, signing_key=keys.current)
    ready = {"api": False}
    app = build_app(keys.accepted, book, metrics, on_report, reconciler().alive,
                    lambda: ready["api"] and reconciler().alive())
    state["http"] = await start_server(app, operator.http_port)
    state["resync"] = asyncio.create_task(reconciler().resync_forever())
    state["ready_check"] = asyncio.create_task(
        until_api_answers(cluster, operator.namespaces, ready, logger))
    logger.info("serving progress, metrics and health on port %d", operator.http_port)


async def until_api_answers(cluster: Cluster, namespaces: tuple[str, ...], ready: dict[str, bool],
                            logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Ready once the API server answered a list of steps with this operator's own
    credentials; until then /readyz says 503 and the reason is logged."""
    while True:
        try:
            await asyncio.to_thread(cluster.list_steps_once, namespaces)
        except Exception as error:  # any failure (RBAC, network): not ready, try again
            logger.warning("not ready: cannot list ParallelRunSteps: %s", str(error)[:300])
            await asyncio.sleep(READY_RETRY_SECONDS)
        else:
            ready["api"] = True
            return


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    for task in ("resync", "ready_check"):
        if task in state:
            state[task].cancel()
    if "http" in state:
        await state["http"].cleanup()


def load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def new_api_client() -> client.ApiClient:
    load_config()
    return client.ApiClient()


def on_report(report: Report) -> None:
    reconciler().schedule((report.namespace, report.name))


@kopf.index(GROUP, VERSION, PLURAL)
def prs_steps(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(str(namespace), name): {"apiVersion": body.get("apiVersion"),
                                "metadata": dict(body.metadata), "spec": dict(body.spec),
                                "status": dict(body.status)}}


@kopf.index(GROUP, VERSION, PLURAL, when=lambda status, **_: status.get("phase") == "Succeeded")
def prs_succeeded(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status,
                  **_: Any) -> dict[Any, Any]:
    output = (status.get("output") or {}).get("uri") or spec["output"]["uri"]
    return {(str(namespace), status.get("fingerprint")): ReuseSource(name, output)}


@kopf.index("batch", "v1", "jobs", labels=CHILD_LABELS)
def prs_jobs(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(str(namespace), labels[LABEL_STEP]): view_job(body)}


@kopf.index("", "v1", "pods", labels=CHILD_LABELS)
def prs_pods(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(str(namespace), labels[LABEL_STEP]): view_pod(body)}


def adopt_indexes(kwargs: dict[str, Any]) -> Reconciler:
    active = reconciler()
    if not active.indexes.steps:
        active.indexes = Indexes(kwargs["prs_steps"], kwargs["prs_jobs"], kwargs["prs_pods"],
                                 kwargs["prs_succeeded"])
    return active


@kopf.on.event(GROUP, VERSION, PLURAL)
async def step_changed(namespace: str | None, name: str, **kwargs: Any) -> None:
    await adopt_indexes(kwargs).reconcile((str(namespace), name))


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_LABELS)
async def job_changed(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
    await adopt_indexes(kwargs).reconcile((str(namespace), labels[LABEL_STEP]))


@kopf.on.event("", "v1", "pods", labels=CHILD_LABELS)
async def pod_changed(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
    await adopt_indexes(kwargs).reconcile((str(namespace), labels[LABEL_STEP]))


def run(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.lease_name:  # several replicas: only the lease holder reconciles
        lead(LeaseLock(client.CoordinationV1Api(new_api_client()), settings.lease_namespace,
                       settings.lease_name, settings.identity))
    if not settings.progress_key:  # no key file yet: the key is in (or goes into) its Secret
        core = Timed(client.CoreV1Api(new_api_client()), REQUEST_TIMEOUT)
        key = stored_key(core, settings.key_secret_namespace, settings.key_secret_name)
        settings = replace(settings, progress_key=key)
    state["settings"] = settings
    kopf.run(standalone=True, clusterwide=not settings.namespaces,
             namespaces=settings.namespaces)
