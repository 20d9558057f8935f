"""`helm test`: the installed operator runs one tiny ParallelRunStep to success.

The step's code and its input files come from the test's ConfigMap (the input reaches the
step's pods through spec.podTemplate); its output goes to a claim. This script creates the
step, waits for its Complete condition, checks that every item succeeded and deletes the
step. It runs in the operator image (Python and the kubernetes client) as the test's own
ServiceAccount, which may create steps and read or delete only this one.

Settings (the chart's test Pod sets them): STEP_NAMESPACE, STEP_NAME, CODE_CONFIG_MAP,
INPUT_MOUNT, ITEMS, OUTPUT_URI, TIMEOUT_SECONDS."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

GROUP, VERSION, PLURAL = "parallelrun.io", "v1alpha1", "parallelrunsteps"
POLL_SECONDS = 2.0
INPUT_VOLUME = "helm-test-input"


def step_manifest(env: Mapping[str, str], run_id: str) -> dict[str, Any]:
    """The test step: the ConfigMap is both its code and (mounted read-only) its input; the
    output goes to a folder of its own on the claim, so runs never meet."""
    mount = env["INPUT_MOUNT"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ParallelRunStep",
        "metadata": {"name": env["STEP_NAME"], "namespace": env["STEP_NAMESPACE"],
                     "labels": {"app.kubernetes.io/component": "helm-test"}},
        "spec": {
            "code": {"configMap": env["CODE_CONFIG_MAP"], "entryScript": "score.py"},
            "input": {"type": "files", "uri": mount, "glob": "item-*.txt"},
            "output": {"uri": f"{env['OUTPUT_URI'].rstrip('/')}/{run_id}"},
            "miniBatchSize": "2", "nodeCount": 1, "processCountPerNode": 1,
            "podTemplate": {
                "volumes": [{"name": INPUT_VOLUME,
                             "configMap": {"name": env["CODE_CONFIG_MAP"]}}],
                "volumeMounts": [{"name": INPUT_VOLUME, "mountPath": mount,
                                  "readOnly": True}],
            },
        },
    }


def condition(status: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def verdict(status: Mapping[str, Any], items: int) -> str | None:
    """None while the step runs; "" when it succeeded with every item; else why it failed."""
    if condition(status, "Complete"):
        counts = status.get("items") or {}
        if counts.get("succeeded") == items and not counts.get("failed"):
            return ""
        return f"the step completed with items {counts}, expected {items} succeeded"
    if condition(status, "Failed") and status.get("completionTime"):
        return f"the step failed: {status.get('message', '')}"
    return None


def main(env: Mapping[str, str]) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    if env.get("KUBERNETES_SERVICE_HOST"):  # in the test Pod
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:  # run by hand (or by the cluster tests) with a kubeconfig
        config.load_kube_config()  # type: ignore[no-untyped-call]
    custom: Any = client.CustomObjectsApi()
    namespace, name = env["STEP_NAMESPACE"], env["STEP_NAME"]
    items, timeout = int(env["ITEMS"]), float(env["TIMEOUT_SECONDS"])

    def delete() -> None:
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                   propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    delete()  # a step left by an earlier run that did not finish
    for _ in range(30):
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                   step_manifest(env, uuid.uuid4().hex[:8]))
            break
        except ApiException as error:
            if error.status != 409:  # 409: the old one is still being deleted
                raise
            time.sleep(POLL_SECONDS)
    print(f"helm test: step {namespace}/{name} created with {items} items", flush=True)
    deadline, shown = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                     name).get("status") or {}
        line = f"{status.get('phase', 'Pending')}: {status.get('message', '')}"
        if line != shown:
            print(f"helm test: {line}", flush=True)
            shown = line
        found = verdict(status, items)
        if found == "":
            delete()  # a failed step stays for `kubectl describe`; the next run deletes it
            print(f"helm test: step {name} succeeded: {items} of {items} items")
            return 0
        if found is not None:
            print(f"helm test: {found}", file=sys.stderr)
            return 1
        time.sleep(POLL_SECONDS)
    print(f"helm test: step {namespace}/{name} did not complete within {timeout:.0f} s (is "
          "the operator running and watching this namespace? can the step's pods mount the "
          "output claim? `kubectl describe prs` shows the conditions)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(os.environ))
