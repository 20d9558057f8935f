"""Real object-storage servers on loopback, for the tests of the s3://, abfs:// and gs:// storage.

- S3: SeaweedFS (`weed server -s3`), built from its Go module by tools/build-seaweedfs.sh.
- Azure Blob: Azurite's blob service, installed from npm by tools/build-azurite.sh.
- Google Cloud Storage: fake-gcs-server, built from its Go module by
  tools/build-fake-gcs-server.sh.

Each server is a child process on a free 127.0.0.1 port, with its data under a folder the caller
gives (``<root>/data``; its output goes to ``<root>/server.log``). `start()` waits until the
server answers and makes sure the bucket (container) exists; `stop()` ends the process and
`start()` brings it back on the same port over the same data, for tests where storage goes away
mid-run. `env` is what a client is given to reach the server, the way each ecosystem does it;
`uri(path)` names an object; `filesystem()` is a pyarrow filesystem for the server (the
docstrings below say what each needs); `request()` sends one raw, signed HTTP request
(conditional writes and other calls pyarrow does not expose). `pause()`/`resume()` freeze the
process instead (connections hang rather than being refused).

The pytest side (a build before the first test, fixtures that fail rather than skip when a
server cannot be built) is `prebuild_storage_servers`, `server_binary` and `start_server` at
the bottom; the fixtures themselves are in tests/storage/conftest.py.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlencode

import pytest

from tests.build_scripts import run_build_script

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"

Kind = Literal["s3", "azure", "gcs"]
KINDS: tuple[Kind, ...] = ("s3", "azure", "gcs")

DEFAULT_BUCKET = "prs-test"

# The access key and secret the SeaweedFS server is configured with (any strings work).
S3_ACCESS_KEY = "prs-test-access-key"
S3_SECRET_KEY = "prs-test-secret-key-0123456789abcdefghij"
S3_REGION = "us-east-1"

# Azurite's one built-in account and its published key (the Azure Storage emulator's
# well-known development credentials).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_API_VERSION = "2021-08-06"


class StorageServerError(RuntimeError):
    """A server could not be built, started or reached."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StorageServer:
    """One server process. Subclasses say how to run it, probe it and make the bucket."""

    kind: ClassVar[Kind]
    build_script: ClassVar[str]

    def __init__(self, binary: Path, root: Path, bucket: str = DEFAULT_BUCKET) -> None:
        self.binary = binary
        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "server.log"
        self.bucket = bucket
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    # ---- what a client is given -------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the authority pyarrow's endpoint options take."""
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}"

    @property
    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def uri(self, path: str = "") -> str:
        raise NotImplementedError

    def filesystem(self) -> Any:
        """A `pyarrow.fs` filesystem that reaches this server (paths: ``bucket/key``)."""
        raise NotImplementedError

    # ---- the process ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (user + system): on a small machine the
        server shares the cores with its clients, and benchmarks say what it took."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, timeout: float = 60.0, writable: bool = True) -> None:
        """Start the process (same port, same data as before) and wait until it serves: until
        it accepts writes, or with `writable=False` only until it answers (SeaweedFS reads at
        once after a restart but holds writes ~15 s, see S3Server)."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self._command()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, env=self._process_env(), start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            self._wait(deadline, self._answers, "to answer")
            self._make_bucket()
            if writable:
                self._wait(deadline, self._writable, "to accept writes")
        except BaseException:
            self.stop(kill=True)
            raise

    # Seconds a stopped server may take to shut down before it is killed.
    stop_grace: ClassVar[float] = 20.0

    def stop(self, kill: bool = False) -> None:
        """End the process: SIGTERM (SIGKILL when `kill`, or when it outlives `stop_grace`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            os.killpg(process.pid, signal.SIGCONT)  # a paused server handles its SIGTERM
        try:
            process.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # Children left in the group (none expected) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def restart(self, down_for: float = 0.0, kill: bool = False) -> None:
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel but never
        answered, as with a hung server or a dropped network, until `resume()`."""
        if self._process is not None and self.running:
            os.killpg(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None and self.running:
            os.killpg(self._process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> StorageServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait(self, deadline: float, probe: Any, what: str) -> None:
        last = ""
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise StorageServerError(
                    f"{self.kind} server exited (code {code}) before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if probe():
                    return
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise StorageServerError(
                    f"{self.kind} server on port {self.port} did not come {what} in time "
                    f"({last or 'no answer'}); log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def _process_env(self) -> dict[str, str]:
        # The servers get no cloud credentials or endpoints of the caller's.
        prefixes = ("AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR", "WEED_")
        return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    def _make_bucket(self) -> None:
        raise NotImplementedError

    def _writable(self) -> bool:
        return True

    # ---- raw HTTP -----------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None, body: bytes | None = None,
        timeout: float = 10.0,
    ) -> HttpReply:  # fmt: skip
        """One request to the server, signed as its clients sign (S3: SigV4, Azure: Shared
        Key). `path` is the server path as sent: ``/bucket/key`` (S3),
        ``/devstoreaccount1/container/blob`` (Azure), ``/storage/v1/...`` (GCS)."""
        query = dict(query or {})
        sent = self._sign(method, path, query, dict(headers or {}), body)
        target = quote(path, safe="/-_.~") + (f"?{urlencode(query)}" if query else "")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            return HttpReply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, data
            )
        finally:
            connection.close()

    def _sign(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
        body: bytes | None,
    ) -> dict[str, str]:  # fmt: skip
        return headers


class S3Server(StorageServer):
    """SeaweedFS: master, volume server, filer and S3 gateway in one `weed server` process.

    Every port is chosen once (the S3 one is `port`) and kept across restarts. One identity
    (S3_ACCESS_KEY / S3_SECRET_KEY) with admin rights; anonymous requests are refused.

    Timings (2 cores): a first start takes ~11 s (the filer's membership checks and the
    master's first volume allocation). After a restart over existing data the gateway reads at
    once, but the master refuses volume assignments for a fixed 15 s warm-up (3 heartbeat
    pulses of 5 s, not configurable), so PUTs block until then; `start()` waits for it.
    """

    kind = "s3"
    build_script = "build-seaweedfs.sh"
    PROBE_BUCKET = "prs-readiness-probe"
    # On SIGTERM its filer retries flushing a metadata event log for 15 s once the volume
    # server is gone; the objects themselves are already on disk.
    stop_grace = 3.0

    def __init__(self, binary: Path, root: Path, bucket: str = DEFAULT_BUCKET) -> None:
        super().__init__(binary, root, bucket)
        names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc")
        self.ports: dict[str, int] = {}
        for name in names:
            self.ports[name] = _distinct_port({self.port, *self.ports.values()})

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": S3_REGION,
        }

    def uri(self, path: str = "") -> str:
        return f"s3://{self.bucket}/{path.lstrip('/')}"

    def filesystem(self) -> Any:
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, region=S3_REGION,
            endpoint_override=self.host, scheme="http",
        )  # fmt: skip

    def _command(self) -> list[str]:
        config = self.root / "s3-identities.json"
        config.write_text(json.dumps({"identities": [{
            "name": "prs-test",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))  # fmt: skip
        p = self.ports
        return [
            str(self.binary), f"-logdir={self.root}", "server",  # its logs: not in /tmp
            f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
            # A restarted single master waits one election timeout (10 s by default) before
            # it leads again and the gateway can write.
            "-master.electionTimeout=1s",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            # As S3 does: a PUT into a missing bucket is NoSuchBucket, not a new bucket.
            "-s3.autoCreateBucket=false",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]  # fmt: skip

    def _answers(self) -> bool:
        return self.request("GET", "/", timeout=5).status == 200

    def _make_bucket(self) -> None:
        for bucket in (self.bucket, self.PROBE_BUCKET):
            reply = self.request("PUT", f"/{bucket}")
            if reply.status not in (200, 409):
                raise StorageServerError(f"creating bucket {bucket}: {reply.status} {reply.text}")

    def _writable(self) -> bool:
        # Right after a (re)start the master may not know a writable volume yet.
        return self.request("PUT", f"/{self.PROBE_BUCKET}/probe", body=b"ok").status == 200

    def _sign(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
        body: bytes | None,
    ) -> dict[str, str]:  # fmt: skip
        return sigv4_headers(
            method, self.host, path, query, headers, body or b"",
            S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION,
        )  # fmt: skip


class AzureServer(StorageServer):
    """Azurite's blob service (path-style URLs: http://127.0.0.1:PORT/devstoreaccount1/...).

    Azurite keeps its blob index in memory and saves it every few seconds and at a graceful
    stop: `stop()` (SIGTERM) keeps every blob, `stop(kill=True)` loses the blobs written in
    the last ~5 s (their data files stay, the index forgets them), which real Azure never does.
    """

    kind = "azure"
    build_script = "build-azurite.sh"

    @property
    def account_url(self) -> str:
        return f"{self.endpoint}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.account_url};"
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "AZURE_STORAGE_CONNECTION_STRING": self.connection_string,
            "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        }

    def uri(self, path: str = "") -> str:
        """The production form (what a user writes); pyarrow's `from_uri` cannot reach Azurite
        with it: see `pyarrow_uri`."""
        return f"abfs://{self.bucket}@{AZURITE_ACCOUNT}.dfs.core.windows.net/{path.lstrip('/')}"

    def pyarrow_uri(self, path: str = "") -> str:
        """A URI that `pyarrow.fs.FileSystem.from_uri` resolves to this Azurite: the account
        as user name, ``host:port``, the container as first path segment, ``enable_tls=false``
        and an account SAS. pyarrow takes no account key from a URI (it ignores a password),
        and without a key or SAS it uses DefaultAzureCredential, whose bearer tokens the
        Azure SDK refuses to send over http."""
        return (
            f"abfs://{AZURITE_ACCOUNT}@{self.host}/{self.bucket}/{path.lstrip('/')}"
            f"?enable_tls=false&{self.account_sas()}"
        )

    def account_sas(
        self, permissions: str = "rwdlacup", expiry: str = "2099-01-01T00:00:00Z"
    ) -> str:
        """An account SAS query string for the blob service (all resource types)."""
        fields = {
            "sv": AZURE_API_VERSION, "ss": "b", "srt": "sco", "sp": permissions,
            "se": expiry, "spr": "https,http",
        }  # fmt: skip
        to_sign = "\n".join([
            AZURITE_ACCOUNT, fields["sp"], fields["ss"], fields["srt"], "", fields["se"], "",
            fields["spr"], fields["sv"], "", "",
        ])  # fmt: skip
        digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256)
        fields["sig"] = base64.b64encode(digest.digest()).decode()
        return urlencode(fields)

    def filesystem(self) -> Any:
        from pyarrow import fs

        return fs.AzureFileSystem(
            account_name=AZURITE_ACCOUNT, account_key=AZURITE_KEY,
            blob_storage_authority=self.host, blob_storage_scheme="http",
            dfs_storage_authority=self.host, dfs_storage_scheme="http",
        )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(self.data_dir), "--skipApiVersionCheck", "--loose",
            "--disableTelemetry", "--silent",
        ]  # fmt: skip

    def _answers(self) -> bool:
        reply = self.request("GET", f"/{AZURITE_ACCOUNT}", query={"comp": "list"}, timeout=5)
        return reply.status == 200

    def _make_bucket(self) -> None:
        reply = self.request(
            "PUT", f"/{AZURITE_ACCOUNT}/{self.bucket}", query={"restype": "container"}
        )
        if reply.status not in (201, 409):
            raise StorageServerError(
                f"creating container {self.bucket}: {reply.status} {reply.text}"
            )

    def _sign(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
        body: bytes | None,
    ) -> dict[str, str]:  # fmt: skip
        return azure_shared_key_headers(
            method, path, query, headers, body, AZURITE_ACCOUNT, AZURITE_KEY
        )


class GcsServer(StorageServer):
    """fake-gcs-server; it checks no credentials at all.

    With its filesystem backend (`persistent=True`, the default, needed for stop()/start())
    each object is a file under data/<bucket>/, so two GCS behaviours are lost: an object
    cannot share its name with a "directory" prefix of other objects (an upload of ``a/b``
    beside ``a/b/c`` fails with 404), and directory marker objects (``d/``, what pyarrow's
    create_dir writes) are not kept. `persistent=False` uses the memory backend, which has
    neither problem but forgets everything at stop().
    """

    kind = "gcs"
    build_script = "build-fake-gcs-server.sh"
    PROJECT = "prs-test"

    def __init__(
        self, binary: Path, root: Path, bucket: str = DEFAULT_BUCKET, persistent: bool = True
    ) -> None:
        super().__init__(binary, root, bucket)
        self.persistent = persistent

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def uri(self, path: str = "") -> str:
        return f"gs://{self.bucket}/{path.lstrip('/')}"

    def filesystem(self) -> Any:
        from pyarrow import fs

        return fs.GcsFileSystem(
            anonymous=True, endpoint_override=self.host, scheme="http",
            project_id=self.PROJECT, retry_time_limit=timedelta(seconds=10),
        )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            str(self.binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
            "-backend", "filesystem" if self.persistent else "memory",
            "-filesystem-root", str(self.data_dir),
            "-public-host", self.host, "-external-url", self.endpoint, "-log-level", "warn",
        ]  # fmt: skip

    def _answers(self) -> bool:
        return self.request("GET", "/storage/v1/b", query={"project": self.PROJECT}).status == 200

    def _make_bucket(self) -> None:
        reply = self.request(
            "POST", "/storage/v1/b", query={"project": self.PROJECT},
            headers={"Content-Type": "application/json"},
            body=json.dumps({"name": self.bucket}).encode(),
        )  # fmt: skip
        if reply.status not in (200, 409):
            raise StorageServerError(f"creating bucket {self.bucket}: {reply.status} {reply.text}")


SERVER_CLASSES: dict[Kind, type[StorageServer]] = {
    "s3": S3Server, "azure": AzureServer, "gcs": GcsServer,
}  # fmt: skip


def _distinct_port(taken: set[int]) -> int:
    # SeaweedFS derives nothing from these ports, but they must differ from each other.
    for _ in range(50):
        port = free_port()
        if port not in taken:
            return port
    raise StorageServerError("no free loopback port")


# ---- request signing ---------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str, host: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
    body: bytes, access_key: str, secret_key: str, region: str, service: str = "s3",
) -> dict[str, str]:  # fmt: skip
    """`headers` plus the AWS Signature Version 4 headers for one request (all headers signed)."""
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed |= {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload}
    names = sorted(signed)
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query.items())
    canonical = "\n".join([
        method,
        quote(path, safe="/-_.~"),
        "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        payload,
    ])  # fmt: skip
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()
    ])  # fmt: skip
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        **{k: v for k, v in headers.items() if k.lower() != "host"},
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        ),
    }


_AZURE_STANDARD_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type",
    "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)  # fmt: skip


def azure_shared_key_headers(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
    body: bytes | None, account: str, key: str,
) -> dict[str, str]:  # fmt: skip
    """`headers` plus x-ms-date, x-ms-version and a Shared Key Authorization header."""
    sent = {k.lower(): v for k, v in headers.items()}
    sent.setdefault("x-ms-date", formatdate(usegmt=True))
    sent.setdefault("x-ms-version", AZURE_API_VERSION)
    if body is not None:
        sent.setdefault("content-type", "application/octet-stream")
        sent["content-length"] = str(len(body))
    standard = [sent.get(name, "") for name in _AZURE_STANDARD_HEADERS]
    if standard[2] == "0":
        standard[2] = ""  # Content-Length is signed empty when zero
    canonical_headers = "".join(
        f"{name}:{sent[name].strip()}\n" for name in sorted(sent) if name.startswith("x-ms-")
    )
    resource = f"/{account}{quote(path, safe='/-_.~')}" + "".join(
        f"\n{name.lower()}:{value}" for name, value in sorted(query.items())
    )
    to_sign = "\n".join([method, *standard]) + "\n" + canonical_headers + resource
    digest = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    sent["authorization"] = f"SharedKey {account}:{base64.b64encode(digest).decode()}"
    return sent


# ---- building, and the pytest side -----------------------------------------------------------


def build_server(kind: Kind, timeout: float = 3600.0) -> Path:
    """Run the kind's tools/build-*.sh (a no-op when cached) and return the binary it prints."""
    script = TOOLS / SERVER_CLASSES[kind].build_script
    binary = run_build_script(script, timeout, StorageServerError)
    if not binary.is_file():
        raise StorageServerError(f"{script.name} printed {binary}, which is not a file")
    return binary


# Filled once per session, before the first test (outside the per-test timeout): a first
# build of SeaweedFS takes many minutes; later runs find the binaries in the cache.
_built: dict[Kind, Path | StorageServerError] = {}

# The fixture names that need each kind (tests/storage/conftest.py defines them).
FIXTURES: dict[Kind, tuple[str, ...]] = {
    "s3": ("s3_server",), "azure": ("azure_server",), "gcs": ("gcs_server",),
}  # fmt: skip
FACTORY_FIXTURE = "make_storage_server"


def prebuild_storage_servers(session: pytest.Session) -> None:
    """Build (or find) each server some collected test uses, before the tests start."""
    if session.config.option.collectonly:
        return
    used: set[str] = set()
    for item in session.items:
        used.update(getattr(item, "fixturenames", ()))
    kinds = [k for k in KINDS if FACTORY_FIXTURE in used or used & set(FIXTURES[k])]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for kind in kinds:
        if kind in _built:
            continue
        if reporter is not None:
            reporter.write_line(f"storage tests: building or finding the {kind} server ...")
        _built[kind] = _build_or_error(kind)


def _build_or_error(kind: Kind) -> Path | StorageServerError:
    try:
        return build_server(kind)
    except StorageServerError as exc:
        return exc


def server_binary(kind: Kind) -> Path:
    """The kind's binary; a build failure fails the test (never skips it)."""
    built = _built.get(kind)
    if built is None:
        built = _built[kind] = _build_or_error(kind)
    if isinstance(built, StorageServerError):
        pytest.fail(f"{kind} storage server unavailable: {built}", pytrace=False)
    return built


def start_server(kind: Kind, root: Path, bucket: str = DEFAULT_BUCKET) -> StorageServer:
    """A started server of `kind` with its data under `root`; a failure fails the test."""
    server = SERVER_CLASSES[kind](server_binary(kind), root, bucket)
    try:
        server.start()
    except StorageServerError as exc:
        pytest.fail(f"{kind} storage server did not start: {exc}", pytrace=False)
    return server


def all_env(servers: Iterable[StorageServer]) -> dict[str, str]:
    """The client environment of several servers at once (their variables do not overlap)."""
    merged: dict[str, str] = {}
    for server in servers:
        merged |= server.env
    return merged
