"""pyarrow.fs filesystems for s3://, gs:// and Azure Blob, set up the way each ecosystem
sets up its own clients: from the standard environment variables and credential chains,
never from the step's spec (which the cluster stores in plain text).

- S3: the AWS SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web
  identity, instance metadata); AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an
  S3-compatible server (MinIO, SeaweedFS, Ceph); AWS_REGION or AWS_DEFAULT_REGION.
- GCS: Google's application default credentials (GOOGLE_APPLICATION_CREDENTIALS, the
  metadata server); STORAGE_EMULATOR_HOST for an emulator, as Google's own clients read it.
- Azure: AZURE_STORAGE_CONNECTION_STRING (account, key or SAS, endpoints: Azurite's form),
  else AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN,
  else DefaultAzureCredential (workload identity, managed identity, AZURE_CLIENT_ID...).

pyarrow.fs was chosen over fsspec and obstore: it is already a dependency (tabular input),
its readers do ranged reads and Parquet row groups directly, and it serves all three.
"""

from __future__ import annotations

import datetime
import functools
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from prs_runner.step.uris import Location

CONNECT_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 60.0
RETRY_ATTEMPTS = 8  # AWS standard retries back off up to 20 s: about a minute of outage
GCS_RETRY_SECONDS = 60
QUICK_CONNECT_SECONDS = 3.0  # planning: a wrong endpoint or key is said at once
QUICK_ATTEMPTS = 2
QUICK_GCS_RETRY_SECONDS = 5
AZURE_RETRY_SECONDS = 60.0  # pyarrow's Azure client gives up after ~3 tries in ~5 s
# What a call says when the store did not answer at all (Azure's client, through pyarrow):
# worth trying again, unlike a refusal (a key, a name, a missing object).
UNANSWERED = ("Fail to get a new connection", "Could not connect", "Connection refused",
              "Timeout was reached", "Connection reset", "Failure when receiving data")


class StorageError(OSError):
    """A storage call that failed; the message names the URI, what happened and what to do."""


def open_filesystem(location: Location, uri: str, env: Mapping[str, str],
                    patient: bool = True) -> tuple[Any, str]:
    """The pyarrow filesystem for LOCATION and the path of its root on it; PATIENT ones
    retry through an outage of about a minute, the others give up within seconds."""
    from pyarrow import fs as pafs

    root = "/".join(p for p in (location.bucket, location.path) if p)
    if location.scheme == "s3":
        return pafs.S3FileSystem(**s3_options(env, patient)), root
    if location.scheme == "gs":
        return pafs.GcsFileSystem(**gcs_options(env, patient)), root
    azure = pafs.AzureFileSystem(**azure_options(location, uri, env))
    return (PatientCalls(azure, AZURE_RETRY_SECONDS) if patient else azure), root


class PatientCalls:
    """A filesystem whose calls that reach no store are made again, with backoff, for up to
    SECONDS (each returned stream's own reads are not): the workers and the merge ride out
    an outage of about a minute on Azure as on S3 and GCS, whose clients retry so."""

    def __init__(self, filesystem: Any, seconds: float) -> None:
        self.filesystem, self.seconds = filesystem, seconds

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.filesystem, name)
        return functools.partial(self.call, method) if callable(method) else method

    def call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        from pyarrow.lib import ArrowException

        give_up, pause = time.monotonic() + self.seconds, 0.5
        while True:
            try:
                return method(*args, **kwargs)
            except FileNotFoundError:
                raise
            except (OSError, ArrowException) as error:
                if not unanswered(error) or time.monotonic() + pause > give_up:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 8.0)


def put_whole(filesystem: Any, path: str, data: bytes) -> None:
    """DATA as the object at PATH: it appears whole when the upload ends."""
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def put_patiently(filesystem: Any, path: str, data: bytes) -> None:
    """put_whole, made again whole when the store did not answer, through a patient
    filesystem (Azure: its client gives up within seconds, mid-upload too; S3's and GCS's
    retry each request of an upload themselves). The same bytes under the same name: a put
    made twice leaves one object."""
    if isinstance(filesystem, PatientCalls):
        filesystem.call(put_whole, filesystem.filesystem, path, data)
    else:
        put_whole(filesystem, path, data)


def unanswered(error: BaseException) -> bool:
    """Whether ERROR says the store did not answer (not that it refused)."""
    return any(words in str(error) for words in UNANSWERED)


def endpoint(url: str) -> tuple[str, str]:
    """(host[:port][/path], scheme) of an endpoint URL; https when it names no scheme."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.netloc + parts.path.rstrip("/"), parts.scheme


def s3_options(env: Mapping[str, str], patient: bool = True) -> dict[str, Any]:
    from pyarrow import fs as pafs

    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS if patient else QUICK_CONNECT_SECONDS,
        "request_timeout": REQUEST_TIMEOUT_SECONDS,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(
            max_attempts=RETRY_ATTEMPTS if patient else QUICK_ATTEMPTS),
    }
    url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if url:
        options["endpoint_override"], options["scheme"] = endpoint(url)
        options["force_virtual_addressing"] = False  # path style: what S3-compatible servers take
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return options


def gcs_options(env: Mapping[str, str], patient: bool = True) -> dict[str, Any]:
    options: dict[str, Any] = {
        "retry_time_limit": datetime.timedelta(
            seconds=GCS_RETRY_SECONDS if patient else QUICK_GCS_RETRY_SECONDS),
    }
    emulator = env.get("STORAGE_EMULATOR_HOST")
    if emulator:
        options["endpoint_override"], options["scheme"] = endpoint(
            emulator if "://" in emulator else f"http://{emulator}")
        options["anonymous"] = True  # emulators take no credentials
    return options


def connection_string(text: str) -> dict[str, str]:
    """AZURE_STORAGE_CONNECTION_STRING's `Key=Value;...` pairs (values may hold '=')."""
    pairs = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def azure_options(location: Location, uri: str, env: Mapping[str, str]) -> dict[str, Any]:
    settings = connection_string(env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    account = (location.account or settings.get("AccountName")
               or env.get("AZURE_STORAGE_ACCOUNT_NAME", ""))
    if not account:
        raise StorageError(
            f"{uri}: no storage account: set AZURE_STORAGE_ACCOUNT_NAME or "
            "AZURE_STORAGE_CONNECTION_STRING, or write "
            "abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH")
    options: dict[str, Any] = {"account_name": account}
    key = settings.get("AccountKey") or env.get("AZURE_STORAGE_ACCOUNT_KEY") \
        or env.get("AZURE_STORAGE_KEY")
    sas = settings.get("SharedAccessSignature") or env.get("AZURE_STORAGE_SAS_TOKEN")
    if key:
        options["account_key"] = key
    elif sas:
        options["sas_token"] = sas
    blob = settings.get("BlobEndpoint")
    plain_http = (blob or "").startswith("http://") or settings.get(
        "DefaultEndpointsProtocol") == "http"
    if plain_http and not (key or sas):
        # DefaultAzureCredential refuses a non-TLS endpoint by aborting the whole process
        # (a C++ exception nobody catches), so this is said here, before any call.
        raise StorageError(f"{uri}: no account key or SAS token for the http endpoint "
                           f"{blob or 'of the connection string'}: set AccountKey or "
                           "SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING")
    if blob:
        # Azurite serves the account under its endpoint's path; pyarrow adds the account to
        # the path itself for such an authority, so only host and port are passed.
        authority, scheme = endpoint(blob)
        authority = authority.split("/", 1)[0]
        options.update(blob_storage_authority=authority, blob_storage_scheme=scheme,
                       dfs_storage_authority=authority, dfs_storage_scheme=scheme)
    elif settings.get("DefaultEndpointsProtocol") == "http":
        options.update(blob_storage_scheme="http", dfs_storage_scheme="http")
    return options


CREDENTIALS = {
    "s3": "the AWS credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
          "web identity, the instance role)",
    "gs": "Google's default credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server)",
    "az": "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, "
          "else DefaultAzureCredential",
}
ENDPOINTS = {
    "s3": "AWS_ENDPOINT_URL", "gs": "STORAGE_EMULATOR_HOST",
    "az": "the connection string's BlobEndpoint",
}
DENIED = ("ACCESS_DENIED", "AccessDenied", "403", "Forbidden", "InvalidAccessKeyId",
          "SignatureDoesNotMatch", "AuthenticationFailed", "AuthorizationFailure",
          "No credentials", "credentials", "Unauthorized", "401")
MISSING = ("NoSuchBucket", "NO_SUCH_BUCKET", "bucket does not exist", "ContainerNotFound")
UNREACHABLE = ("Couldn't connect", "Could not connect", "Connection refused", "curlCode: 7",
               "Failed to connect", "Couldn't resolve", "Timeout", "timed out", "UNAVAILABLE",
               "Unavailable")


AWS_CREDENTIAL_SOURCES = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


def remote_failure(where: str, error: Exception,
                   env: Mapping[str, str] = os.environ) -> str:
    """One line for a failed remote call: where, the store's own words, what to do."""
    text = " ".join(str(error).split())
    family = {"abfs": "az", "abfss": "az", "az": "az", "gs": "gs"}.get(
        where.split("://", 1)[0], "s3")
    if family == "s3" and "ACCESS_DENIED" in text and not any(
            name in env for name in AWS_CREDENTIAL_SOURCES):
        hint = ("no AWS credentials in the environment (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE) and no "
                "instance role gave any: set them, e.g. from a Secret with envFrom")
    elif family == "az" and "Bearer token" in text:
        hint = ("no account key or SAS token (AZURE_STORAGE_CONNECTION_STRING, "
                "AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN), and DefaultAzureCredential "
                "needs https")
    elif any(word in text for word in DENIED):
        hint = f"the credentials were refused; they came from {CREDENTIALS[family]}"
    elif any(word in text for word in MISSING):
        hint = "the bucket or container does not exist: create it or fix the name"
    elif any(word in text for word in UNREACHABLE):
        hint = f"the store did not answer: check {ENDPOINTS[family]} and the network"
    else:
        hint = "fix it, then run again to resume"
    return f"{where}: {text[:240]}; {hint}"
