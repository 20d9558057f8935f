"""Reaching the cluster from the user's side (`prs status`, `prs logs`) as kubectl does:
--kubeconfig, else $KUBECONFIG (several files joined by ':'), else ~/.kube/config; --context,
else the current context, whose namespace is the default one; in a pod without any of these,
the pod's service account and namespace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")


class AccessError(Exception):
    """No way to the cluster, in one line saying what to do."""


def has_kubeconfig(flag: str | None) -> bool:
    return bool(flag or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG.expanduser().exists())


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT / "token").exists()


def connect(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """(an ApiClient, the default namespace)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    if not has_kubeconfig(kubeconfig) and not context and in_cluster():
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
        return client.ApiClient(configuration), namespace or "default"
    if not has_kubeconfig(kubeconfig):
        raise AccessError("no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG (or run "
                          "in a pod, with its service account)")
    # Named each time: the client reads $KUBECONFIG once, when it is imported.
    source = kubeconfig or os.environ.get("KUBECONFIG") or str(DEFAULT_KUBECONFIG.expanduser())
    try:
        config.load_kube_config(config_file=source, context=context,  # type: ignore[no-untyped-call]
                                client_configuration=configuration)
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=source)
    except (config.ConfigException, OSError, yaml.YAMLError) as error:
        raise AccessError(f"kubeconfig {source}: {' '.join(str(error).split())}") from None
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) or active
    written = ((chosen or {}).get("context") or {}).get("namespace")
    return client.ApiClient(configuration), str(written or "default")
