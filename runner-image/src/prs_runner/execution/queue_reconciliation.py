"""What a worker's commit log says about the mini-batches its supervisor sent it, where the
worker has not said it itself: read while the worker runs (it holds the 'done's of quick
mini-batches, execution.committer) or after it died. Pure: the supervisor (execution.shard)
reads the log and acts on the answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from prs_runner.output.results import ResultHeader


def ended_at(header: ResultHeader) -> float:
    """When a committed try ended, in Unix seconds (0: a record without its start)."""
    return 0.0 if header.started is None else header.started + header.seconds


def read_ahead(queue: Sequence[int], headers: Iterable[ResultHeader]) -> list[ResultHeader]:
    """Of HEADERS (what a live worker committed past what it said, in order), those that
    finish the head of QUEUE (what it was sent, in order): its 'done's for them are on
    their way. One that is not next ends the run: its 'done' will say."""
    ahead: list[ResultHeader] = []
    for header in headers:
        if len(ahead) >= len(queue) or queue[len(ahead)] != header.id:
            break
        ahead.append(header)
    return ahead


def unsent(ids: Sequence[int], sent: Sequence[int]) -> list[int]:
    """Of IDS, the mini-batches of a life's records in order, the positions of those that
    no command the shard SENT accounts for: a mini-batch recorded more often than it was
    sent ran, the last times, on a command the shard never sent (its script forged it).
    Which of its runs that was is not known; each ran the script's run() on it."""
    left = Counter(sent)
    unmatched: list[int] = []
    for position, mb_id in enumerate(ids):
        if left[mb_id] > 0:
            left[mb_id] -= 1
        else:
            unmatched.append(position)
    return unmatched


@dataclass(frozen=True)
class LostQueue:
    """A dead worker's queue, settled by its log."""

    done: list[ResultHeader]  # committed: finished, said or not
    back: list[int]  # not started, or run to the end but not committed: sent again
    running: int | None  # in run() when it died: that try failed
    # The latest end of the commits before `running` (of all, when none was running): the
    # running try began after it. Unix seconds; 0: none known.
    running_since: float


def settle_lost(queue: Iterable[int], ran: Container[int],
                committed: Mapping[int, ResultHeader]) -> LostQueue:
    """QUEUE: what the worker was sent, in order; RAN: those it said it ran to the end (their
    commit to follow); COMMITTED: its life's log by id. The committed ones are done wherever
    they are in the queue (an object store's parts may commit after a later one ran). Of
    the others, the first not run to the end is the one it was in; it had not started those
    after it."""
    done: list[ResultHeader] = []
    back: list[int] = []
    running: int | None = None
    since = 0.0
    for mb_id in queue:
        header = committed.get(mb_id)
        if header is not None:
            done.append(header)
            if running is None:  # said or not, the one running began after it
                since = max(since, ended_at(header))
        elif mb_id in ran or running is not None:
            back.append(mb_id)
        else:
            running = mb_id
    return LostQueue(done, back, running, since)


def fits(event: dict[str, Any], queue: Sequence[int], ready: bool, read_early: Container[int],
         grouped: bool) -> bool:
    """Whether EVENT (a runner message by its shape) is one the worker can send now: 'ready'
    and 'init_failed' only before it is ready, 'ran' only where commits are GROUPED (an
    object store's parts), and what it says of mini-batches only of those it was sent, in
    order (READ_EARLY: those whose 'done' catch_up took already). A script that writes to
    the worker's pipe could send anything; the supervisor acts only on what fits its queue."""
    if "done" in event:  # the usual one first: it is checked once per message
        fresh = [done["done"] for done in event["done"] if done["done"] not in read_early]
        return ready and fresh == list(islice(queue, len(fresh)))
    if "ready" in event or "init_failed" in event:
        return not ready
    if not ready:
        return False
    if "ran" in event:
        # Not "once": a shard that takes work from another's tail may send one twice
        return grouped and event["ran"] in queue
    if "error" in event:
        return bool(queue) and queue[0] == event["id"]
    return bool(queue)  # commit_failed: the one it names may be any of its part's
