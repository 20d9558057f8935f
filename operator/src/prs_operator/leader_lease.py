"""Leader election with a coordination.k8s.io Lease, as client-go's leaderelection does it:
one operator reconciles, the others wait; a leader that cannot renew in time exits, so two
operators never reconcile the same step.

Expiry is judged by how long the Lease has been seen unchanged on this operator's own
clock, never by comparing another machine's renewTime with ours (clocks drift).

`claim` is pure (table-tested); `LeaseLock` is the thin I/O around it."""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

LEASE_SECONDS = 15  # another operator takes over this long after the last renewal
RENEW_EVERY = 5.0
RETRY_EVERY = 2.0
# Each Lease call gives up after this (connect, read): a call that hangs on a dead connection
# must not hold the renewal past the lease. The watchdog below covers even a call that hangs.
CALL_TIMEOUT = (2.0, 3.0)
logger = logging.getLogger(__name__)


def claim(spec: Mapping[str, Any] | None, me: str, unchanged_for: float, now: str,
          duration: int = LEASE_SECONDS) -> dict[str, Any] | None:
    """The Lease spec to write to hold (or keep) the lease, or None while another holder's
    lease runs: it was seen unchanged for less than its duration."""
    spec = spec or {}
    holder = spec.get("holderIdentity") or ""
    held_for = int(spec.get("leaseDurationSeconds") or duration)
    if holder and holder != me and unchanged_for < held_for:
        return None
    mine = holder == me
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": duration,
        "acquireTime": spec.get("acquireTime") if mine and spec.get("acquireTime") else now,
        "renewTime": now,
        "leaseTransitions": int(spec.get("leaseTransitions") or 0) + (0 if mine or not holder
                                                                       else 1),
    }


def micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLock:
    """Reads and writes one Lease with optimistic concurrency (resourceVersion)."""

    def __init__(self, coordination: Any, namespace: str, name: str, identity: str) -> None:
        self.api, self.namespace, self.name, self.identity = coordination, namespace, name, identity
        self.seen_version, self.seen_at = "", time.monotonic()
        self.renewed = time.monotonic()  # the last time this operator held the lease

    def try_hold(self) -> bool:
        try:
            body = self.read()
        except ApiException as error:
            if error.status != 404:
                raise
            return self.create()
        version = body["metadata"]["resourceVersion"]
        if version != self.seen_version:
            self.seen_version, self.seen_at = version, time.monotonic()
        spec = claim(body.get("spec"), self.identity, time.monotonic() - self.seen_at,
                     micro_time())
        if spec is None:
            return False
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "resourceVersion": version},
                "spec": spec}, _request_timeout=CALL_TIMEOUT)
        except ApiException as error:
            if error.status == 409:  # someone else wrote it first
                return False
            raise
        return True

    def create(self) -> bool:
        spec = claim(None, self.identity, 0.0, micro_time())
        try:
            self.api.create_namespaced_lease(self.namespace, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec},
                _request_timeout=CALL_TIMEOUT)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def read(self) -> dict[str, Any]:
        response = self.api.read_namespaced_lease(self.name, self.namespace,
                                                  _preload_content=False,
                                                  _request_timeout=CALL_TIMEOUT)
        body: dict[str, Any] = json.loads(response.data)
        return body

    def holder(self) -> str:
        try:
            lease = self.read()
        except Exception:  # only for the log line
            return "unknown"
        return str((lease.get("spec") or {}).get("holderIdentity") or "nobody")


def lead(lock: LeaseLock, exit_now: Callable[[int], None] = os._exit) -> None:
    """Block until this operator holds the lease, then keep renewing it in a thread; when a
    renewal cannot be made before the lease would run out, exit at once (the pod restarts
    and waits its turn) rather than risk a second operator reconciling the same steps."""
    announced = ""
    while not attempt(lock):
        holder = lock.holder()
        if holder != announced:
            logger.info("waiting for the lease %s/%s, held by %s", lock.namespace, lock.name,
                        holder)
            announced = holder
        time.sleep(RETRY_EVERY)
    logger.info("acquired the lease %s/%s as %s", lock.namespace, lock.name, lock.identity)
    lock.renewed = time.monotonic()
    threading.Thread(target=renew_forever, args=(lock,), daemon=True,
                     name="lease-renewal").start()
    threading.Thread(target=exit_when_lost, args=(lock, exit_now), daemon=True,
                     name="lease-watchdog").start()


def attempt(lock: LeaseLock) -> bool:
    try:
        return lock.try_hold()
    except Exception as error:  # the API is away: not held, try again
        logger.warning("lease %s/%s: %s", lock.namespace, lock.name, str(error)[:300])
        return False


def renew_forever(lock: LeaseLock) -> None:
    while True:
        time.sleep(RENEW_EVERY)
        if attempt(lock):
            lock.renewed = time.monotonic()


def exit_when_lost(lock: LeaseLock, exit_now: Callable[[int], None],
                   check_every: float = 0.5) -> None:
    """Exit once no renewal succeeded for longer than the lease minus a renewal interval,
    even while a renewal call still hangs: another operator may take the lease then."""
    while time.monotonic() - lock.renewed <= LEASE_SECONDS - RENEW_EVERY:
        time.sleep(check_every)
    logger.error("lost the lease %s/%s: exiting so that only one operator reconciles",
                 lock.namespace, lock.name)
    exit_now(1)
