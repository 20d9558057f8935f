"""Runs reconcile passes: reads what the kopf indexes hold, computes the pass (pure), then
carries out its actions and writes the status once, only when it changed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from prs_operator.actions import Action, CreateJob, Event, Rejection, SetJobSuspended
from prs_operator.builders import RunnerSettings
from prs_operator.conditions import parse_time
from prs_operator.kube import Cluster, CreateRejected
from prs_operator.metrics import Metrics
from prs_operator.observation import JobView, Observed, PodView, ReuseSource, own_children
from prs_operator.pass_queue import PassQueue
from prs_operator.pass_state import progress_only
from prs_operator.progress import ProgressBook
from prs_operator.status import compute_pass
from prs_runner.step.spec import apply_defaults, drop_nulls

Key = tuple[str, str]
PROGRESS_WRITE_INTERVAL = 2.0  # seconds between status writes that only move the counts
RESYNC_SECONDS = 30.0
# A round of the resync loop can take a while when many steps are unfinished.
HEARTBEAT_LIMIT_SECONDS = 3 * RESYNC_SECONDS + 60
MAX_BACKOFF_SECONDS = 300.0  # every unfinished step is reconciled at least this often
TERMINAL = ("Succeeded", "Failed")
logger = logging.getLogger(__name__)


@dataclass
class Indexes:
    """The kopf indexes (key → values), handed over by the first handler call."""

    steps: Mapping[Key, Iterable[Mapping[str, Any]]] = field(default_factory=dict)
    jobs: Mapping[Key, Iterable[JobView]] = field(default_factory=dict)
    pods: Mapping[Key, Iterable[PodView]] = field(default_factory=dict)
    succeeded: Mapping[tuple[str, str], Iterable[ReuseSource]] = field(default_factory=dict)


def unfinished_steps(
    steps: Mapping[Key, Iterable[Mapping[str, Any]]], written: Mapping[Key, Mapping[str, Any]]
) -> list[Key]:
    """Steps without a completionTime, by the newest status known (ours if we wrote one)."""
    keys = []
    for key in list(steps):
        bodies = list(steps.get(key, ()))
        status = written.get(key) or (bodies[0].get("status") if bodies else None) or {}
        if bodies and not status.get("completionTime"):
            keys.append(key)
    return keys


def describe(action: Action) -> str:
    if isinstance(action, CreateJob):
        return f"create Job {action.manifest['metadata']['name']}"
    if isinstance(action, SetJobSuspended):
        return f"{'suspend' if action.suspend else 'resume'} Job {action.name}"
    return f"delete Job {action.name}"


class Reconciler:
    def __init__(self, cluster: Cluster, settings: RunnerSettings, book: ProgressBook,
                 metrics: Metrics, signing_key: Callable[[], bytes] | None = None) -> None:
        self.cluster, self.settings, self.book, self.metrics = cluster, settings, book, metrics
        self.signing_key = signing_key  # the key may change while the operator runs
        self.heartbeat = time.monotonic()  # the resync loop's last round
        # Jobs still in the index that the API server no longer has: kopf does not turn a
        # deletion missed during a watch restart into an event, so the resync checks.
        self.gone: set[str] = set()
        self.indexes = Indexes()
        self.queue = PassQueue()
        self.written: dict[Key, Mapping[str, Any]] = {}  # status we wrote, newer than the index
        self.scheduled: set[Key] = set()
        self.rechecks: dict[Key, float] = {}  # the next pass due without an event (monotonic)
        self.last_write: dict[Key, float] = {}
        self.rejections: dict[Key, Rejection] = {}  # the last Job creation the API refused
        self.rejected_at: dict[Key, float] = {}

    async def reconcile(self, key: Key) -> None:
        """A pass of KEY, or one more round of the pass already running (see PassQueue)."""
        try:
            await self.queue.run(key, lambda: self.one_pass(key))
        except Exception:
            self.metrics.reconcile_errors.inc()
            raise

    async def one_pass(self, key: Key) -> None:
        started = time.monotonic()
        step = self.current_step(key)
        if step is None:
            self.forget(key)
            return
        await self.run_pass(key, step)
        self.metrics.reconcile.observe(time.monotonic() - started)

    def current_step(self, key: Key) -> dict[str, Any] | None:
        bodies = list(self.indexes.steps.get(key, ()))
        if not bodies or bodies[0]["metadata"].get("deletionTimestamp"):
            return None
        step = dict(bodies[0])
        step["spec"] = apply_defaults(drop_nulls(step["spec"]))
        written = self.written.get(key)
        if written is not None and written.get("_uid") == step["metadata"]["uid"]:
            step["status"] = {k: v for k, v in written.items() if k != "_uid"}
        return step

    async def run_pass(self, key: Key, step: dict[str, Any]) -> None:
        namespace, name = key
        uid = step["metadata"]["uid"]
        jobs = [job for job in self.indexes.jobs.get(key, ()) if job.uid not in self.gone]
        children = own_children(uid, jobs, list(self.indexes.pods.get(key, ())))
        observed = Observed(
            step=step,
            jobs=children.jobs,
            pods=children.pods,
            stale=children.stale,
            rejection=self.rejections.get(key),
            live=self.book.shards(namespace, name, uid),
            succeeded=self.succeeded_steps(namespace),
            now=time.time(),
        )
        settings = self.settings
        if self.signing_key is not None:
            settings = replace(settings, progress_key=self.signing_key())
        result = compute_pass(observed, settings)
        for action in result.actions:
            if isinstance(action, CreateJob) and self.backing_off(key, action):
                continue
            try:
                done = await asyncio.to_thread(self.cluster.apply, namespace, action)
            except CreateRejected as refused:
                assert isinstance(action, CreateJob)  # only creations are refused this way
                await self.rejected(key, step, action, refused)
                continue
            if isinstance(action, CreateJob):
                self.rejections.pop(key, None)
            logger.info("%s/%s: %s%s", namespace, name, describe(action),
                        "" if done else " (nothing to do)")
            if done and isinstance(action, CreateJob):
                job_name = action.manifest["metadata"]["name"]
                await self.event(step, Event("Normal", "JobCreated", f"created Job {job_name}"))
                if job_name.endswith("-run"):
                    self.observe_running(step)
        for event in result.events:
            await self.event(step, event)
        old = step.get("status") or {}
        if result.status != old and progress_only(old, result.status) and self.wrote_lately(key):
            self.schedule(key)  # counts only: they go out with the next write, in <= 2 s
        elif result.status != old:
            await asyncio.to_thread(self.cluster.patch_status, namespace, name, result.status)
            self.metrics.status_writes.inc()
            self.written[key] = {**result.status, "_uid": uid}
            self.last_write[key] = time.monotonic()
            if result.status.get("phase") in TERMINAL and old.get("phase") not in TERMINAL:
                self.metrics.observe_finish(result.status)
        self.metrics.observe_phase(key, result.status.get("phase"))
        if result.recheck_in is not None:
            self.recheck(key, result.recheck_in)

    def wrote_lately(self, key: Key) -> bool:
        return time.monotonic() < self.last_write.get(key, 0.0) + PROGRESS_WRITE_INTERVAL

    def backing_off(self, key: Key, action: CreateJob) -> bool:
        """After a refused create, the next try waits 2, 4, 8 ... up to 300 s."""
        rejection = self.rejections.get(key)
        if rejection is None or rejection.job != action.manifest["metadata"]["name"]:
            return False
        wait = min(2.0 ** rejection.attempts, MAX_BACKOFF_SECONDS)
        return time.monotonic() < self.rejected_at.get(key, 0.0) + wait

    async def rejected(self, key: Key, step: Mapping[str, Any], action: CreateJob,
                       refused: CreateRejected) -> None:
        name = action.manifest["metadata"]["name"]
        earlier = self.rejections.get(key)
        attempts = earlier.attempts + 1 if earlier is not None and earlier.job == name else 1
        self.rejections[key] = Rejection(name, refused.code, refused.reason, refused.message,
                                         attempts)
        self.rejected_at[key] = time.monotonic()
        logger.warning("%s/%s: Job %s refused: %s", *key, name, refused)
        await self.event(step, Event("Warning", "FailedCreate",
                                     f"Error creating Job {name}: {refused}"))
        self.schedule(key)  # the next pass shows it (and ends the step if it cannot heal)

    async def event(self, step: Mapping[str, Any], event: Event) -> None:
        try:
            await asyncio.to_thread(self.cluster.record_event, step, event)
        except Exception:  # events are best-effort; the status carries the same facts
            logger.exception("could not record event %s", event.reason)

    def observe_running(self, step: Mapping[str, Any]) -> None:
        created = parse_time(step["metadata"].get("creationTimestamp"))
        if created is not None:
            self.metrics.to_running.observe(max(time.time() - created, 0.0))

    def succeeded_steps(self, namespace: str) -> dict[str, list[ReuseSource]]:
        found: dict[str, list[ReuseSource]] = {}
        for (space, fingerprint), sources in self.indexes.succeeded.items():
            if space == namespace:
                found.setdefault(fingerprint, []).extend(sources)
        return found

    def forget(self, key: Key) -> None:
        self.written.pop(key, None)
        self.rejections.pop(key, None)
        self.rejected_at.pop(key, None)
        self.last_write.pop(key, None)
        self.rechecks.pop(key, None)
        self.book.forget(*key)
        self.metrics.observe_phase(key, None)

    async def resync_forever(self) -> None:
        """Events drive the passes; this catches what a failed pass or a missed event left
        behind. A plain task, not a kopf timer: timers would put a finalizer on every step."""
        while True:
            self.heartbeat = time.monotonic()
            await asyncio.sleep(RESYNC_SECONDS)
            for key in self.unfinished():
                try:
                    await self.forget_deleted_jobs(key)
                    await self.reconcile(key)
                except Exception:
                    logger.exception("resync of %s/%s failed", *key)

    async def forget_deleted_jobs(self, key: Key) -> None:
        known = {job.uid for job in self.indexes.jobs.get(key, ()) if job.uid} - self.gone
        if not known:
            return
        existing = await asyncio.to_thread(self.cluster.job_uids, *key)
        missed = known - existing
        if missed:
            logger.warning("%s/%s: %d Job(s) deleted without an event; reconciling without "
                           "them", *key, len(missed))
            self.gone |= missed

    def alive(self) -> bool:
        """The resync loop went round lately: the event loop is not stuck (a pass that
        blocks it would stop the heartbeat) and the loop's task is still running."""
        return time.monotonic() - self.heartbeat < HEARTBEAT_LIMIT_SECONDS

    def unfinished(self) -> list[Key]:
        return unfinished_steps(self.indexes.steps, self.written)

    def schedule(self, key: Key) -> None:
        """Reconcile soon after a progress report, at most every PROGRESS_WRITE_INTERVAL."""
        if key in self.scheduled:
            return
        self.scheduled.add(key)
        wait = max(0.0, self.last_write.get(key, 0.0) + PROGRESS_WRITE_INTERVAL - time.monotonic())
        asyncio.get_running_loop().call_later(wait, self.fire, key)

    def recheck(self, key: Key, delay: float) -> None:
        """A pass in DELAY seconds (a waiting pod reaches startupTimeout then), unless an
        earlier one is already due: the resync alone could be RESYNC_SECONDS late."""
        due = time.monotonic() + delay
        if self.rechecks.get(key, float("inf")) <= due:
            return
        self.rechecks[key] = due
        asyncio.get_running_loop().call_later(delay, self.fire_recheck, key, due)

    def fire_recheck(self, key: Key, due: float) -> None:
        if self.rechecks.get(key) == due:
            del self.rechecks[key]
        asyncio.get_running_loop().create_task(self.reconcile(key))

    def fire(self, key: Key) -> None:
        self.scheduled.discard(key)
        asyncio.get_running_loop().create_task(self.reconcile(key))
