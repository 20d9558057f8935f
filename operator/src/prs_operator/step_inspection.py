"""The reads behind `prs status` and `prs logs`: a step, its own pods, their logs. Thin: what
to make of them is prs_operator.step_overview's and prs_operator.pod_logs' business."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from prs_operator.kube import GROUP, PLURAL, VERSION, Timed, api_reason
from prs_operator.observation import LABEL_STEP
from prs_operator.step_overview import Overview, overview, owned_pods

CONTAINER = "runner"  # the one container of every pod of a step (builders.py)
TAIL_LINES = 40  # enough to hold a shard's newest progress report among its script's lines
TAIL_BYTES = 64 * 1024
PARALLEL_TAILS = 8
READ_TIMEOUT = (10.0, 60.0)


class StepNotFound(Exception):
    pass


class StepReader:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.core: Any = Timed(client.CoreV1Api(api), READ_TIMEOUT)
        self.batch: Any = Timed(client.BatchV1Api(api), READ_TIMEOUT)
        self.custom: Any = Timed(client.CustomObjectsApi(api), READ_TIMEOUT)
        self.streams: Any = client.CoreV1Api(api)  # a follow has no read timeout

    def step(self, name: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404 and not_found_name(error) == name:
                raise StepNotFound(f"no ParallelRunStep {name!r} in namespace "
                                   f"{self.namespace!r} (kubectl get prs -n "
                                   f"{self.namespace})") from None
            if error.status == 404:  # the type itself: no object was looked for
                raise StepNotFound(
                    f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}: is the "
                    "ParallelRunStep CRD installed? (kubectl get crd "
                    f"{PLURAL}.{GROUP}; the chart installs it)") from None
            raise
        return found

    def own_pods(self, step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The pods of the step's own Jobs, as the API returns them (plain JSON)."""
        selector = f"{LABEL_STEP}={step['metadata']['name']}"
        jobs = self.raw(self.batch.list_namespaced_job, label_selector=selector)
        pods = self.raw(self.core.list_namespaced_pod, label_selector=selector)
        return owned_pods(step, jobs, pods)

    def raw(self, method: Callable[..., Any], **query: Any) -> list[Mapping[str, Any]]:
        # Plain JSON, not the typed models: the pure modules read the API's own field names.
        response = method(self.namespace, _preload_content=False, **query)
        try:
            items: list[Mapping[str, Any]] = json.loads(response.data)["items"]
        finally:
            response.release_conn()
        return items

    def tail(self, pod: str) -> str:
        """The end of a pod's log; "" when it cannot be read (not started, node gone)."""
        try:
            return self.log_text(pod, tail_lines=TAIL_LINES, limit_bytes=TAIL_BYTES)
        except ApiException:
            return ""

    def log_text(self, pod: str, **query: Any) -> str:
        """A pod's log as text: bytes that are not UTF-8 (a script may print anything)
        become U+FFFD, as in a follow, instead of failing the whole command."""
        response = self.core.read_namespaced_pod_log(
            pod, self.namespace, container=CONTAINER, _preload_content=False, **query)
        try:
            return bytes(response.data).decode(errors="replace")
        finally:
            response.release_conn()

    def overview(self, name: str) -> Overview:
        step = self.step(name)
        pods = self.own_pods(step)
        running = [p["metadata"]["name"] for p in pods
                   if (p.get("status") or {}).get("phase") == "Running"]
        with ThreadPoolExecutor(PARALLEL_TAILS) as pool:
            tails = dict(zip(running, pool.map(self.tail, running), strict=True))
        return overview(step, pods, tails)

    def log(self, pod: str, timestamps: bool) -> str:
        return self.log_text(pod, timestamps=timestamps)

    def stream(self, pod: str, timestamps: bool) -> Iterator[str]:
        """A pod's log line by line as it grows, until its container ends."""
        response = self.streams.read_namespaced_pod_log(
            pod, self.namespace, container=CONTAINER, follow=True, timestamps=timestamps,
            _preload_content=False)  # no timeout: a quiet shard may say nothing for long
        pending = b""
        try:
            for chunk in response.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (line.decode(errors="replace") for line in lines)
            if pending:
                yield pending.decode(errors="replace")
        finally:
            response.release_conn()


def not_found_name(error: ApiException) -> str | None:
    """The name in a 404's Status details: set when an object is missing, absent when the
    resource type is (a CRD not installed)."""
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return None
    details = body.get("details") if isinstance(body, dict) else None
    name = details.get("name") if isinstance(details, dict) else None
    return str(name) if name is not None else None


class LogPump:
    """Follows pods' logs on threads of their own; the caller takes the lines, prefixed, from
    one queue. A None in the queue is a follow that ended."""

    def __init__(self, reader: StepReader, timestamps: bool) -> None:
        self.reader, self.timestamps = reader, timestamps
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.running = 0

    def start(self, label: str, pod: str, note: str = "") -> None:
        self.running += 1
        thread = threading.Thread(target=self.pump, args=(label, pod, note), daemon=True,
                                  name=f"log-{pod}")  # daemon: Ctrl-C ends the command at once
        thread.start()

    def pump(self, label: str, pod: str, note: str) -> None:
        try:
            if note:
                self.lines.put(f"[{label}] {note}")
            for line in self.reader.stream(pod, self.timestamps):
                self.lines.put(f"[{label}] {line}")
        except ApiException as error:
            self.lines.put(f"[{label}] (no log from pod {pod}: {api_reason(error)[1]})")
        except Exception as error:  # a dropped connection ends this pod's follow only
            self.lines.put(f"[{label}] (log of pod {pod} interrupted: {error})")
        finally:
            self.lines.put(None)

    def lines_until(self, deadline: float) -> Iterator[str]:
        """Lines as they arrive, until DEADLINE (time.monotonic())."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                return
            if item is None:
                self.running -= 1
            else:
                yield item
