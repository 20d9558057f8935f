"""crds/parallelrunsteps.yaml served by a real kube-apiserver agrees with the offline
validator (prs_runner.step.validation) on every case of tests/spec_cases.py, on the examples, on
defaults, on immutability and on the printer columns."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from prs_runner.step.spec import apply_defaults
from prs_runner.step.validation import validate_document
from tests.spec_cases import (
    BAD_CASES,
    GOOD_CASES,
    IMMUTABLE_UPDATES,
    Case,
    full_document,
    good_document,
)

from .controlplane import ControlPlane
from .crd_install import GROUP, PLURAL, VERSION, install_crd

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]




def example_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO / "examples").glob("**/*.yaml")):
        text = path.read_text()
        if "ParallelRunStep" not in text:
            continue
        for index, doc in enumerate(yaml.safe_load_all(text)):
            if isinstance(doc, dict) and doc.get("kind") == "ParallelRunStep":
                found.append((f"{path.relative_to(REPO)}#{index}", doc))
    return found


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    *example_documents(),
    *((f"good:{case.id}", case.document()) for case in GOOD_CASES),
]


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with control_plane.api_client() as api_client:
        yield api_client


@pytest.fixture(scope="module")
def served_crd(api: client.ApiClient) -> dict[str, Any]:
    return install_crd(api)


@pytest.fixture(scope="module")
def objects(api: client.ApiClient, served_crd: dict[str, Any]) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture(scope="module")
def crd_namespace(control_plane: ControlPlane, api: client.ApiClient) -> Iterator[str]:
    name = f"crd-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def create(
    objects: client.CustomObjectsApi, namespace: str, doc: dict[str, Any], dry_run: bool = True
) -> dict[str, Any]:
    body = copy.deepcopy(doc)
    if isinstance(body.get("metadata"), dict):
        body["metadata"].pop("namespace", None)
    created = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body,
        dry_run="All" if dry_run else None, field_validation="Strict",
    )  # fmt: skip
    return cast(dict[str, Any], created)


def rejection(call: Callable[[], object]) -> tuple[int, str]:
    """The status and the message of a refused request (fails when it is accepted)."""
    try:
        call()
    except client.ApiException as exc:
        body = json.loads(exc.body) if exc.body else {}
        causes = body.get("details", {}).get("causes", [])
        text = " | ".join(
            [body.get("message", str(exc))]
            + [f"{c.get('field', '')}: {c.get('message', '')}" for c in causes]
        )
        return int(exc.status), text
    raise AssertionError("the API server accepted it")


def test_crd_is_structural_and_established(served_crd: dict[str, Any]) -> None:
    conditions = {c["type"]: c["status"] for c in served_crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"
    names = served_crd["status"]["acceptedNames"]
    assert names["shortNames"] == ["prs"]
    assert names["categories"] == ["all", "batch"]


@pytest.mark.parametrize(("label", "doc"), ACCEPTED, ids=[label for label, _ in ACCEPTED])
def test_accepted_by_both(
    objects: client.CustomObjectsApi, crd_namespace: str, label: str, doc: dict[str, Any]
) -> None:
    assert validate_document(doc) == [], "the offline validator rejects it"
    try:
        created = create(objects, crd_namespace, doc)
    except client.ApiException as exc:
        raise AssertionError(f"the API server rejects {label}: {exc.body}") from exc
    # The server's defaults are the offline ones (miniBatchSize is left to the runner).
    offline = apply_defaults(doc["spec"])
    server = dict(created["spec"])
    offline.pop("miniBatchSize")
    if doc["spec"].get("miniBatchSize") is not None:
        assert str(server.pop("miniBatchSize")) == str(doc["spec"]["miniBatchSize"])
    drop_none = {k: v for k, v in offline.items() if v is not None}
    assert {k: v for k, v in server.items() if v is not None} == drop_none


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_rejected_by_both_naming_the_field(
    objects: client.CustomObjectsApi, crd_namespace: str, case: Case
) -> None:
    doc = case.document()
    offline = validate_document(doc)
    assert any(case.field in problem for problem in offline), f"offline: {offline}"
    status, message = rejection(lambda: create(objects, crd_namespace, doc))
    assert status in (400, 422), message
    assert case.field in message, f"offline: {offline}\nserver:  {message}"


@pytest.fixture(scope="module")
def created_step(objects: client.CustomObjectsApi, crd_namespace: str) -> dict[str, Any]:
    doc = full_document()
    doc["metadata"]["name"] = "immutable-step"
    doc["spec"]["ttlSecondsAfterFinished"] = 600
    return create(objects, crd_namespace, doc, dry_run=False)


def replace(
    objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any], dry_run: bool = True
) -> dict[str, Any]:
    replaced = objects.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body["metadata"]["name"], body,
        dry_run="All" if dry_run else None, field_validation="Strict",
    )  # fmt: skip
    return cast(dict[str, Any], replaced)


def current(objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return cast(dict[str, Any], found)


@pytest.mark.parametrize(
    ("path", "value"), IMMUTABLE_UPDATES, ids=[p for p, _ in IMMUTABLE_UPDATES]
)
def test_changing_a_field_is_rejected(
    objects: client.CustomObjectsApi,
    crd_namespace: str,
    created_step: dict[str, Any],
    path: str,
    value: Any,
) -> None:
    body = current(objects, crd_namespace, created_step["metadata"]["name"])
    *parents, last = path.split(".")
    node = body["spec"]
    for part in parents:
        node = node[part]
    assert node.get(last) != value
    node[last] = value
    status, message = rejection(lambda: replace(objects, crd_namespace, body))
    assert status == 422, message
    assert f"spec.{path}: Forbidden: spec.{path}: is immutable" in message


@pytest.mark.parametrize(
    "path", ["input.glob", "miniBatchSize", "code.sourceDirectory", "ttlSecondsAfterFinished"]
)
def test_removing_an_optional_field_is_rejected(
    objects: client.CustomObjectsApi, crd_namespace: str, created_step: dict[str, Any], path: str
) -> None:
    body = current(objects, crd_namespace, created_step["metadata"]["name"])
    *parents, last = path.split(".")
    node = body["spec"]
    for part in parents:
        node = node[part]
    assert last in node, f"spec.{path} was not stored"
    del node[last]
    status, message = rejection(lambda: replace(objects, crd_namespace, body))
    assert status == 422, message
    assert f"spec.{path}: is immutable" in message


def test_adding_a_mini_batch_size_is_rejected(
    objects: client.CustomObjectsApi, crd_namespace: str
) -> None:
    doc = good_document()
    doc["metadata"]["name"] = "no-mini-batch-size"
    body = create(objects, crd_namespace, doc, dry_run=False)
    body["spec"]["miniBatchSize"] = "10"
    status, message = rejection(lambda: replace(objects, crd_namespace, body))
    assert status == 422, message
    assert "spec.miniBatchSize: is immutable" in message
    body["spec"].pop("miniBatchSize")
    body["spec"]["ttlSecondsAfterFinished"] = 600
    status, message = rejection(lambda: replace(objects, crd_namespace, body))
    assert status == 422, message
    assert "spec.ttlSecondsAfterFinished: is immutable" in message


def test_suspend_and_metadata_may_change(
    objects: client.CustomObjectsApi, crd_namespace: str, created_step: dict[str, Any]
) -> None:
    name = created_step["metadata"]["name"]
    body = current(objects, crd_namespace, name)
    body["spec"]["suspend"] = not body["spec"]["suspend"]
    body["metadata"].setdefault("labels", {})["team"] = "ml"
    body["metadata"].setdefault("annotations", {})["note"] = "x"
    replaced = replace(objects, crd_namespace, body, dry_run=False)
    assert replaced["spec"]["suspend"] is body["spec"]["suspend"]
    assert replaced["metadata"]["generation"] == created_step["metadata"]["generation"] + 1
    patched = cast(
        dict[str, Any],
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, crd_namespace, PLURAL, name, {"spec": {"suspend": False}}
        ),
    )
    assert patched["spec"]["suspend"] is False


def test_status_subresource_and_printer_columns(
    control_plane: ControlPlane,
    objects: client.CustomObjectsApi,
    crd_namespace: str,
    served_crd: dict[str, Any],
) -> None:
    columns = {
        c["name"]: c["jsonPath"]
        for c in served_crd["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    for name in ("Phase", "Progress", "ETA", "Failed", "Nodes", "Duration", "Age"):
        assert name in columns
    doc = full_document()
    doc["metadata"]["name"] = "columns-step"
    created = create(objects, crd_namespace, doc, dry_run=False)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "observedGeneration": created["metadata"]["generation"],
        "phase": "Running",
        "conditions": [
            {"type": "Planned", "status": "True", "reason": "InputListed",
             "message": "1,797 files in 180 mini-batches", "lastTransitionTime": now,
             "observedGeneration": 1},
            {"type": "Complete", "status": "False", "reason": "Running", "message": "",
             "lastTransitionTime": now},
            {"type": "Failed", "status": "False", "reason": "Running", "message": "",
             "lastTransitionTime": now},
        ],
        "startTime": now,
        "miniBatches": {"total": 180, "succeeded": 120, "failed": 1, "pending": 59},
        "items": {"total": 1797, "succeeded": 1190, "failed": 7},
        "shards": {"total": 2, "active": 2, "succeeded": 0, "failed": 0},
        "fingerprint": "sha256:0123",
        "output": {"uri": "./out/predict-digits", "file": "parallel_run_step.txt", "rows": 0},
        "reusedFrom": None,
        "progress": "120/180",
        "eta": "2m6s",
        "duration": "4m12s",
        "message": "120 of 180 mini-batches done",
    }  # fmt: skip
    patched = cast(
        dict[str, Any],
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, crd_namespace, PLURAL, "columns-step", {"status": status}
        ),
    )
    kept = {k: v for k, v in status.items() if v is not None}
    assert {k: v for k, v in patched["status"].items() if v is not None} == kept
    bad_phase = {"status": {"phase": "Exploded"}}
    code, message = rejection(
        lambda: objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, crd_namespace, PLURAL, "columns-step", bad_phase
        )
    )
    assert code == 422 and "status.phase" in message

    # kubectl is built with the control plane: a missing one fails the tier, never skips.
    assert (control_plane.bin_dir / "kubectl").exists(), "no kubectl in the control plane build"
    table = control_plane.kubectl("get", "prs", "-n", crd_namespace).stdout.splitlines()
    header = table[0].split()
    assert header == ["NAME", "PHASE", "PROGRESS", "ETA", "FAILED", "NODES", "DURATION", "AGE"]
    row = next(line.split() for line in table[1:] if line.startswith("columns-step"))
    assert row[:7] == ["columns-step", "Running", "120/180", "2m6s", "7", "2", "4m12s"]
    wide = control_plane.kubectl("get", "prs", "-n", crd_namespace, "-o", "wide").stdout
    assert "MESSAGE" in wide.splitlines()[0]
    assert "120 of 180 mini-batches done" in wide
    in_category = control_plane.kubectl("get", "batch", "-n", crd_namespace, "-o", "name").stdout
    assert "parallelrunstep.parallelrun.io/columns-step" in in_category
    resources = control_plane.kubectl("api-resources", "--api-group", GROUP, "-o", "wide").stdout
    assert "prs" in resources and "ParallelRunStep" in resources
