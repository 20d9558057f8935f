"""Installing the project's CRD on the test control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from .controlplane import read_json, wait_for

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "parallelrunsteps.yaml"
GROUP, VERSION, PLURAL = "parallelrun.io", "v1alpha1", "parallelrunsteps"
CRD_NAME = f"{PLURAL}.{GROUP}"


def install_crd(api: client.ApiClient) -> dict[str, Any]:
    """Create (or replace) the CRD and wait until it is Established and served."""
    extensions = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(CRD_PATH.read_text())
    try:
        extensions.create_custom_resource_definition(body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise AssertionError(f"the API server refused the CRD: {exc.body}") from exc
        current = read_json(
            extensions.read_custom_resource_definition(CRD_NAME, _preload_content=False)
        )
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        extensions.replace_custom_resource_definition(CRD_NAME, body)

    def established() -> dict[str, Any] | None:
        crd: dict[str, Any] = read_json(
            extensions.read_custom_resource_definition(CRD_NAME, _preload_content=False)
        )
        conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
        non_structural = conditions.get("NonStructuralSchema", {})
        if non_structural.get("status") == "True":
            raise AssertionError(f"non-structural schema: {non_structural['message']}")
        if conditions.get("Established", {}).get("status") == "True":
            return crd
        return None

    crd = wait_for(established, 30, f"CRD {CRD_NAME} Established")
    objects = client.CustomObjectsApi(api)

    def served() -> bool:
        try:
            objects.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    wait_for(served, 30, f"{PLURAL} served")
    return crd
