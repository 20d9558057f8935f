"""`prs submit`: pack the step's code into a ConfigMap, apply the step to the current kube
context and, with --wait, follow it to the end like `prs run`."""

from __future__ import annotations

import base64
import hashlib
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from prs_operator.conditions import is_true
from prs_operator.kube import GROUP, PLURAL, VERSION
from prs_runner.step.spec import SpecError, Step
from prs_runner.storage.code_archive import ARCHIVE_NAME, pack_directory

POLL_SECONDS = 2.0
PICKUP_SECONDS = 30.0  # an operator sets the step's conditions on its first pass
# The API server refuses objects over 1 MiB (etcd's request limit); leave room for metadata.
MAX_CONFIG_MAP_BYTES = 1_000_000


def code_config_map(step: Step) -> tuple[str, dict[str, Any]] | None:
    """The content-hash-named ConfigMap for code.sourceDirectory, or None for other sources."""
    folder = step.spec["code"].get("sourceDirectory")
    if not folder:
        return None
    archive = pack_directory(step.resolve_local(folder))
    encoded = base64.b64encode(archive).decode()
    if len(encoded) > MAX_CONFIG_MAP_BYTES:
        raise SpecError([
            f"code.sourceDirectory: {folder} packs to {len(archive) / 2**20:.1f} MiB, more than "
            f"a ConfigMap holds (about {MAX_CONFIG_MAP_BYTES * 3 // 4 // 1024} KiB packed); keep "
            "data and models out of it (sideInputs), or build the code into an image and set "
            "code.path"])
    name = f"prs-code-{hashlib.sha256(archive).hexdigest()[:16]}"
    return name, {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of":
                                                        "parallelrunstep"}},
                  "binaryData": {ARCHIVE_NAME: encoded},
                  "immutable": True}


def cluster_document(step: Step, config_map: str | None) -> dict[str, Any]:
    spec = dict(step.spec)
    problems = [f"spec.{path}: the local path {uri!r} cannot be read by pods; use "
                "pvc://CLAIM/path or an absolute path on a volume from spec.podTemplate"
                for path, uri in uris_of(spec) if "://" not in uri and not uri.startswith("/")]
    if problems:
        raise SpecError(problems)
    if config_map is not None:
        spec["code"] = {"entryScript": spec["code"]["entryScript"], "configMap": config_map}
    # Labels (Kueue's queue name among them) and annotations travel with the step.
    metadata = {"name": step.name, **{key: dict(step.metadata[key]) for key in
                                      ("labels", "annotations") if step.metadata.get(key)}}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ParallelRunStep",
            "metadata": metadata, "spec": spec}


def target_namespace(step: Step, flag: str | None) -> str:
    """-n, else the step's metadata.namespace, else the kube context's; -n and a different
    metadata.namespace is an error, as with kubectl."""
    written = step.metadata.get("namespace")
    if flag and written and flag != written:
        raise SpecError([f"metadata.namespace: the step says {written!r} but -n says {flag!r}; "
                         "drop one of them"])
    return str(flag or written or current_namespace())


def uris_of(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    uris = [("input.uri", spec["input"]["uri"]), ("output.uri", spec["output"]["uri"])]
    return uris + [(f"sideInputs[{s['name']}].uri", s["uri"]) for s in spec["sideInputs"]]


def submit(step: Step, namespace: str | None, wait: bool, timeout: float,
           stream: TextIO = sys.stdout) -> int:
    api = new_client()
    namespace = target_namespace(step, namespace)
    found = code_config_map(step)
    core: Any = client.CoreV1Api(api)
    if found is not None:
        try:
            core.create_namespaced_config_map(namespace, found[1])
        except ApiException as error:
            if error.status != 409:  # same name = same content: already there
                raise
    document = cluster_document(step, found[0] if found else None)
    custom: Any = client.CustomObjectsApi(api)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, document)
    except ApiException as error:
        if error.status == 409:
            raise SpecError([f"metadata.name: a ParallelRunStep {step.name!r} already exists in "
                             f"{namespace}; a step's spec is immutable: delete it first or "
                             "use another name"]) from None
        if error.status == 422:
            raise SpecError([str(error.body)]) from None
        raise
    print(f"parallelrunstep.{GROUP}/{step.name} created in namespace {namespace}", file=stream)
    return follow(custom, namespace, step.name, timeout, stream) if wait else 0


def follow(custom: Any, namespace: str, name: str, timeout: float, stream: TextIO,
           pickup_timeout: float = PICKUP_SECONDS) -> int:
    started = time.monotonic()
    deadline, last = started + timeout, ""
    while time.monotonic() < deadline:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                     name).get("status") or {}
        if not status.get("conditions") and time.monotonic() - started > pickup_timeout:
            print(f"no operator has picked up the step after {pickup_timeout:.0f} s: is the "
                  f"operator installed and watching namespace {namespace}? (helm list -A; "
                  "the chart's watchNamespaces); the step stays", file=stream)
            return 3
        line = f"{status.get('phase', 'Pending')}: {status.get('message', '')}"
        if line != last:
            print(line, file=stream, flush=True)
            last = line
        conditions = status.get("conditions") or []
        if is_true(conditions, "Complete"):
            return 0
        if is_true(conditions, "Failed") and status.get("completionTime"):
            return 1
        time.sleep(POLL_SECONDS)
    print(f"timed out after {timeout:.0f} s; the step goes on: kubectl get prs {name} "
          f"-n {namespace}", file=stream)
    return 124


def new_client() -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def current_namespace() -> str:
    _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    return str((active or {}).get("context", {}).get("namespace") or "default")
