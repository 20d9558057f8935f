"""kill -USR1 writes every asyncio task and where it waits to the operator's log."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from prs_operator import task_dump


async def parked(event: asyncio.Event) -> None:
    await event.wait()


def test_sigusr1_logs_each_task_with_the_line_it_awaits(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task_dump.install(loop)
        try:
            event = asyncio.Event()
            waiter = asyncio.create_task(parked(event), name="parked-waiter")
            await asyncio.sleep(0)
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.05)
            event.set()
            await waiter
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    with caplog.at_level(logging.WARNING, logger=task_dump.__name__):
        asyncio.run(scenario())
    text = caplog.text
    assert "asyncio tasks" in text
    assert "--- parked-waiter" in text
    assert "await event.wait()" in text
