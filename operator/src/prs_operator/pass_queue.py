"""One pending pass per step, as a controller's workqueue keeps one entry per key.

Every event of a step or of one of its children asks for a pass; at nodeCount 500 a burst of
pod events would otherwise queue hundreds of identical passes behind the step's lock. Here a
request that arrives while the step's pass runs only marks the step dirty, and the running
pass goes round once more when it ends: any number of requests during a pass cost one pass.
No Kubernetes imports: the queue is tested with plain asyncio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable


class PassQueue:
    def __init__(self) -> None:
        self.running: set[Hashable] = set()
        self.dirty: set[Hashable] = set()

    async def run(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> bool:
        """Run WORK for KEY now, or, when a pass of KEY is running, have that pass repeat
        once it ends. True when this call ran the pass."""
        if key in self.running:
            self.dirty.add(key)
            return False
        self.running.add(key)
        try:
            while True:
                self.dirty.discard(key)
                await work()
                if key not in self.dirty:
                    return True
        finally:
            self.running.discard(key)
            self.dirty.discard(key)
