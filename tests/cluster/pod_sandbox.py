"""TEST INFRASTRUCTURE (cluster tier): how the node agent runs one container of a pod.

Not a container runtime. Images are ignored: a container's ``command`` + ``args`` run as a
local process (same root filesystem, same network, root user) with the project's Python
environment first on ``PATH``, inside its own mount namespace
(``unshare --mount --propagation private``) where the pod's volumes are bind-mounted at their
``mountPath``:

- configMap, secret, downwardAPI and projected volumes: files written under the pod's folder;
- emptyDir: an empty folder under the pod's folder;
- hostPath: the host path itself;
- persistentVolumeClaim: ``<agent root>/pvc/<namespace>/<claimName>`` (made on first use; the
  claim object itself is never looked at);
- ``subPath`` and ``readOnly`` (``mount -o remount,ro,bind``) are honoured;
- the termination message file (``terminationMessagePath``, default /dev/termination-log) is a
  per-container host file bind-mounted at that path.

A mount path that does not exist on the host (``/data``) is created on the host as an empty
directory (or file) before the container starts, used as a mount point only inside the
container's namespace (so the host never sees the volume there), and removed again when the
last container using it has exited: ``HostMountPoints`` keeps the reference counts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

Json = dict[str, Any]
MISSING_OBJECT_WAIT = 30.0  # seconds a missing configMap or secret is waited for
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class PodSetupError(Exception):
    """The pod cannot start: ``reason`` is a kubelet-like CamelCase reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Call a kubernetes client method; return its JSON body as plain dicts.

    The body is always read to the end: an unread response gets its connection closed, and
    the API server then aborts the request (seen with pod DELETE and status PATCH calls).
    """
    response = method(*args, _preload_content=False, **kwargs)
    try:
        body: Json = json.loads(response.data or b"{}")
    finally:
        response.release_conn()
    return body


def resolve_field(pod: Json, field_path: str) -> str:
    """The value of a downward-API ``fieldRef.fieldPath``."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    keyed = _FIELD_KEY.match(field_path)
    if keyed:
        return str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP") or "127.0.0.1",
        "status.hostIP": status.get("hostIP") or "127.0.0.1",
    }
    if field_path not in simple:
        raise PodSetupError("CreateContainerConfigError", f"unsupported fieldRef {field_path!r}")
    return str(simple[field_path] or "")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables replaced, ``$$`` escapes ``$``."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return _VAR_REF.sub(substitute, text)


class ObjectReader:
    """Reads the ConfigMaps and Secrets a pod refers to (``None`` when absent)."""

    def __init__(self, core: Any, namespace: str) -> None:
        self.core = core
        self.namespace = namespace

    def data(self, kind: str, name: str, optional: bool | None) -> dict[str, bytes] | None:
        read = (
            self.core.read_namespaced_config_map
            if kind == "configMap"
            else self.core.read_namespaced_secret
        )
        deadline = time.monotonic() + MISSING_OBJECT_WAIT
        while True:
            try:
                obj = call(read, name, self.namespace)
                break
            except client.ApiException as exc:
                if exc.status == 404 and optional:
                    return None
                if exc.status != 404:
                    raise
                # Like a kubelet, wait for it a while: kube-root-ca.crt (in every service
                # account volume) is published into a new namespace only shortly after it.
                if time.monotonic() > deadline:
                    raise PodSetupError(
                        "CreateContainerConfigError", f"{kind} {name!r} not found"
                    ) from exc
                time.sleep(0.2)
        if kind == "configMap":
            found = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
            found.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
            return found
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def key(self, kind: str, ref: Json) -> str | None:
        found = self.data(kind, ref["name"], ref.get("optional"))
        if found is None or ref["key"] not in found:
            if ref.get("optional"):
                return None
            raise PodSetupError(
                "CreateContainerConfigError", f"{kind} {ref['name']!r} has no key {ref['key']!r}"
            )
        return found[ref["key"]].decode()


def container_env(
    reader: ObjectReader, pod: Json, container: Json, base: Mapping[str, str]
) -> dict[str, str]:
    """The process environment: ``base``, then ``envFrom``, then ``env`` (``$(VAR)`` expanded)."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        kind = "configMap" if "configMapRef" in source else "secret"
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        found = reader.data(kind, ref["name"], ref.get("optional")) or {}
        env.update({source.get("prefix", "") + k: v.decode() for k, v in found.items()})
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand_vars(var.get("value", ""), env)
            continue
        if "fieldRef" in source:
            value: str | None = resolve_field(pod, source["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in source:
            value = reader.key("configMap", source["configMapKeyRef"])
        elif "secretKeyRef" in source:
            value = reader.key("secret", source["secretKeyRef"])
        elif "resourceFieldRef" in source:
            value = (
                str(os.cpu_count() or 1) if "cpu" in source["resourceFieldRef"]["resource"] else "0"
            )
        else:
            raise PodSetupError(
                "CreateContainerConfigError", f"env {var['name']}: unsupported valueFrom"
            )
        if value is not None:
            env[var["name"]] = value
    return env


def _write_files(folder: Path, files: Mapping[str, bytes], items: Iterable[Json] | None) -> None:
    chosen = {item["key"]: item["path"] for item in items} if items else {k: k for k in files}
    for key, rel_path in chosen.items():
        if key not in files:
            raise PodSetupError("CreateContainerConfigError", f"volume key {key!r} not found")
        target = folder / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[key])


class VolumeBuilder:
    """Makes the host folder of each volume of one pod."""

    def __init__(self, core: Any, pod: Json, pod_dir: Path, pvc_root: Path) -> None:
        self.core = core
        self.pod = pod
        self.pod_dir = pod_dir
        self.pvc_root = pvc_root
        self.reader = ObjectReader(core, pod["metadata"]["namespace"])

    def build_all(self) -> dict[str, Path]:
        return {
            volume["name"]: self.build(volume) for volume in self.pod["spec"].get("volumes") or []
        }

    def build(self, volume: Json) -> Path:
        name: str = volume["name"]
        folder = self.pod_dir / "volumes" / name
        if "persistentVolumeClaim" in volume:
            namespace: str = self.pod["metadata"]["namespace"]
            claim: str = volume["persistentVolumeClaim"]["claimName"]
            claim_dir = self.pvc_root / namespace / claim
            claim_dir.mkdir(parents=True, exist_ok=True)
            return claim_dir
        if "hostPath" in volume:
            path = Path(volume["hostPath"]["path"])
            kind = volume["hostPath"].get("type") or ""
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            return path
        folder.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return folder
        if "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                self._fill(folder, source)
            return folder
        if not any(key in volume for key in ("configMap", "secret", "downwardAPI")):
            kinds = sorted(set(volume) - {"name"})
            raise PodSetupError(
                "CreateContainerConfigError", f"volume {name!r}: unsupported source {kinds}"
            )
        self._fill(folder, volume)
        return folder

    def _fill(self, folder: Path, source: Json) -> None:
        if "configMap" in source or "secret" in source:
            kind = "configMap" if "configMap" in source else "secret"
            ref = source[kind]
            found = self.reader.data(
                kind, ref.get("name") or ref.get("secretName"), ref.get("optional")
            )
            if found is not None:
                _write_files(folder, found, ref.get("items"))
        elif "downwardAPI" in source:
            for item in source["downwardAPI"].get("items") or []:
                if "fieldRef" not in item:
                    raise PodSetupError(
                        "CreateContainerConfigError",
                        "downwardAPI: only fieldRef items are supported",
                    )
                target = folder / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(resolve_field(self.pod, item["fieldRef"]["fieldPath"]))
        elif "serviceAccountToken" in source:
            (folder / source["serviceAccountToken"]["path"]).write_text(
                self._token(source["serviceAccountToken"])
            )
        # clusterTrustBundle and podCertificate projections are not supported: nothing is written

    def _token(self, projection: Json) -> str:
        meta = self.pod["metadata"]
        spec: Json = {
            "expirationSeconds": projection.get("expirationSeconds", 3607),
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        }
        if projection.get("audience"):
            spec["audiences"] = [projection["audience"]]
        response = call(
            self.core.create_namespaced_service_account_token,
            self.pod["spec"].get("serviceAccountName") or "default",
            meta["namespace"],
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token: str = response["status"]["token"]
        return token


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


def container_mounts(
    container: Json, volumes: Mapping[str, Path], termination_log: Path
) -> list[Mount]:
    """The bind mounts of one container, parents before children."""
    mounts = [
        Mount(
            termination_log,
            container.get("terminationMessagePath") or "/dev/termination-log",
            False,
        )
    ]
    for spec in container.get("volumeMounts") or []:
        if spec["name"] not in volumes:
            raise PodSetupError(
                "CreateContainerConfigError", f"volumeMount {spec['name']!r}: no such volume"
            )
        source = volumes[spec["name"]]
        if spec.get("subPath"):
            source = source / spec["subPath"]
            if not source.exists():
                source.mkdir(parents=True)
        mounts.append(Mount(source, spec["mountPath"], bool(spec.get("readOnly"))))
    return sorted(mounts, key=lambda mount: len(Path(mount.target).parts))


class HostMountPoints:
    """Reference-counted mount points created on the host for paths that did not exist."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Path, int] = {}

    def acquire(self, target: Path, is_dir: bool) -> list[Path]:
        """Make ``target`` exist; return the created paths it holds (release them later)."""
        with self._lock:
            missing = [p for p in [target, *target.parents] if not p.exists() or p in self._counts]
            for path in reversed(missing):
                if not path.exists():
                    if path == target and not is_dir:
                        path.touch()
                    else:
                        path.mkdir()
                self._counts[path] = self._counts.get(path, 0) + 1
            return missing

    def release(self, held: Iterable[Path]) -> None:
        with self._lock:
            for path in sorted(held, key=lambda p: len(p.parts), reverse=True):
                self._counts[path] -= 1
                if self._counts[path] == 0:
                    del self._counts[path]
                    with contextlib.suppress(OSError):  # not empty or busy: leave it
                        path.rmdir() if path.is_dir() else path.unlink()


STAGE = "/run/prs-stage"  # a private tmpfs inside each container's mount namespace
# The host paths the container's own processes need (the virtualenv with prs-runner, the
# checkout an editable install points into); a volume mounted over their parent (an emptyDir
# on /tmp, with a checkout under /tmp) must not hide them.
REPO_ROOT = Path(__file__).resolve().parents[2]


def mount_script(mounts: Iterable[Mount], workdir: str, keep: Iterable[str] = ()) -> str:
    """The shell prologue run inside the new mount namespace, before ``exec "$@"``.

    Every source (and every path in ``keep``) is first bound into a private staging tmpfs,
    so a mount over a folder that holds other sources cannot hide them. Then the bind mounts
    (parents before children), then the ``keep`` paths again where a mount covered them, and
    read-only remounts last, so that mount points nested in a read-only volume can be made.
    """
    mounts, keep = list(mounts), [k for k in keep if k]
    lines, read_only = ["set -e", f"mkdir -p {STAGE}", f"mount -t tmpfs prs-stage {STAGE}"], []
    for number, mount in enumerate(mounts):
        staged = f"{STAGE}/m{number}"
        lines.append(f"mkdir -p {staged}" if mount.source.is_dir() else f": > {staged}")
        lines.append(f"mount --bind {shlex.quote(str(mount.source))} {staged}")
    for number, path in enumerate(keep):
        lines.append(f"mkdir -p {STAGE}/k{number} && mount --bind {shlex.quote(path)} "
                     f"{STAGE}/k{number}")
    for number, mount in enumerate(mounts):
        target = shlex.quote(mount.target)
        make = f"mkdir -p {target}" if mount.source.is_dir() else f": > {target}"
        lines.append(f"[ -e {target} ] || {make}")  # only nested targets: the agent makes the rest
        lines.append(f"mount --bind {STAGE}/m{number} {target}")
        if mount.read_only:
            read_only.append(f"mount -o remount,ro,bind {target}")
    for number, path in enumerate(keep):
        if any(path.startswith(m.target.rstrip("/") + "/") for m in mounts):
            quoted = shlex.quote(path)
            lines.append(f"mkdir -p {quoted} && mount --bind {STAGE}/k{number} {quoted}")
    lines.append(f"mkdir -p {shlex.quote(workdir)}")
    lines.extend(read_only)
    lines.append(f"cd {shlex.quote(workdir)}")
    lines.append('exec "$@"')
    return "\n".join(lines)


def start_process(
    argv: list[str], mounts: list[Mount], env: Mapping[str, str], workdir: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session and mount namespace, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            # killed with the agent's thread that started it, even if the agent is SIGKILLed
            ["setpriv", "--pdeathsig", "KILL",
             "unshare", "--mount", "--propagation", "private", "--",
             "/bin/sh", "-c",
             mount_script(mounts, workdir, [env.get("VIRTUAL_ENV", ""), str(REPO_ROOT)]),
             "prs-container", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd="/",
            start_new_session=True,
        )  # fmt: skip
