"""The progress key's Secret, created by the operator itself when it is missing.

Why the operator and not the chart: a chart can keep a random key across upgrades only with
Helm's `lookup`, which `helm template` and Argo CD never run. There every render would make a
new key and every sync would rotate it, and pods started under the old key could no longer
report. So the chart renders no key: the first operator that finds no Secret creates one with
a random key (get-or-create), and every later start reads it back. Two replicas starting at
once race on the create; the loser gets 409 Conflict and reads the winner's key.

`key_in`, `secret_manifest` and `with_key` are pure; `stored_key` is the thin I/O."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

KEY_FIELD = "key"  # the Secret's data key, as the chart's volume and existingSecret expect
ATTEMPTS = 3  # a create or update that loses a race is followed by a fresh read
logger = logging.getLogger(__name__)


class KeySecretError(RuntimeError):
    """The key can be neither read nor created: one line saying what to do."""


def new_key() -> str:
    """64 random URL-safe characters (384 bits)."""
    return secrets.token_urlsafe(48)


def key_in(data: Mapping[str, str] | None) -> bytes:
    """The key in a Secret's base64 `data`, surrounding blanks removed; b"" when absent,
    empty or not base64 (the file the kubelet mounts holds the same bytes)."""
    encoded = (data or {}).get(KEY_FIELD) or ""
    try:
        return base64.b64decode(encoded, validate=True).strip()
    except (binascii.Error, ValueError):
        return b""


def secret_manifest(namespace: str, name: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {
            "app.kubernetes.io/component": "progress-key",
            "app.kubernetes.io/managed-by": "parallelrun-operator"}},
        "stringData": {KEY_FIELD: key},
    }


def with_key(namespace: str, name: str, resource_version: str, data: Mapping[str, str] | None,
             key: str) -> dict[str, Any]:
    """A replacement of an existing Secret that has no usable key: its other data kept, the
    key added, and its resourceVersion so that a concurrent writer makes it fail (409)."""
    encoded = base64.b64encode(key.encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace,
                         "resourceVersion": resource_version},
            "data": {**(data or {}), KEY_FIELD: encoded}}


def stored_key(core: Any, namespace: str, name: str) -> bytes:
    """The key in Secret NAMESPACE/NAME, creating the Secret (or its key) when missing.
    CORE is a kubernetes CoreV1Api."""
    for _ in range(ATTEMPTS):
        try:
            found = core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise refused("read", namespace, name, error) from None
            key = new_key()
            if created(core, namespace, name, secret_manifest(namespace, name, key)):
                logger.info("created Secret %s/%s with a new progress key", namespace, name)
                return key.encode()
            continue  # another replica created it first: read its key
        key_bytes = key_in(found.data)
        if key_bytes:
            return key_bytes
        fresh = new_key()
        if replaced(core, namespace, name, with_key(namespace, name,
                                                    found.metadata.resource_version,
                                                    found.data, fresh)):
            logger.info("Secret %s/%s had no progress key: added one", namespace, name)
            return fresh.encode()
    raise KeySecretError(f"Secret {namespace}/{name}: its progress key changed under every one "
                         f"of {ATTEMPTS} attempts to read or create it; restart the operator")


def created(core: Any, namespace: str, name: str, manifest: Mapping[str, Any]) -> bool:
    """True when this call created the Secret, False when it already existed (409)."""
    try:
        core.create_namespaced_secret(namespace, dict(manifest))
    except ApiException as error:
        if error.status == 409:
            return False
        raise refused("create", namespace, name, error) from None
    return True


def replaced(core: Any, namespace: str, name: str, manifest: Mapping[str, Any]) -> bool:
    try:
        core.replace_namespaced_secret(name, namespace, dict(manifest))
    except ApiException as error:
        if error.status in (404, 409):  # deleted or changed meanwhile: read it again
            return False
        raise refused("update", namespace, name, error) from None
    return True


def refused(verb: str, namespace: str, name: str, error: ApiException) -> KeySecretError:
    return KeySecretError(
        f"cannot {verb} Secret {namespace}/{name} holding the progress key: {error.status} "
        f"{error.reason}; grant the operator get, update and create on it (the chart's "
        "progress-key Role) or name a Secret of yours in progressKey.existingSecret")
