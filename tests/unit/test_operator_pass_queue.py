"""The pass queue: requests that arrive during a step's pass cost one more pass, not one each;
different steps run side by side; a failing pass frees its step."""

from __future__ import annotations

import asyncio

import pytest

from prs_operator.pass_queue import PassQueue


def test_requests_during_a_pass_cost_one_more_pass() -> None:
    async def scenario() -> tuple[int, list[bool]]:
        queue, release, runs = PassQueue(), asyncio.Event(), 0

        async def work() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                await release.wait()

        first = asyncio.create_task(queue.run("a", work))
        await asyncio.sleep(0)  # the first pass is running and waits
        others = [await queue.run("a", work) for _ in range(10)]
        release.set()
        assert await first
        return runs, others

    runs, others = asyncio.run(scenario())
    assert others == [False] * 10
    assert runs == 2


def test_a_request_after_the_pass_runs_again() -> None:
    async def scenario() -> list[bool]:
        queue, calls = PassQueue(), []

        async def work() -> None:
            calls.append(True)

        return [await queue.run("a", work), await queue.run("a", work), *calls]

    assert asyncio.run(scenario()) == [True, True, True, True]


def test_steps_do_not_wait_for_each_other() -> None:
    async def scenario() -> list[str]:
        queue, release, order = PassQueue(), asyncio.Event(), []

        async def slow() -> None:
            order.append("a")
            await release.wait()

        async def fast() -> None:
            order.append("b")

        task = asyncio.create_task(queue.run("a", slow))
        await asyncio.sleep(0)
        assert await queue.run("b", fast)
        release.set()
        await task
        return order

    assert asyncio.run(scenario()) == ["a", "b"]


def test_a_failing_pass_frees_its_step() -> None:
    async def scenario() -> bool:
        queue = PassQueue()

        async def broken() -> None:
            raise RuntimeError("API down")

        with pytest.raises(RuntimeError):
            await queue.run("a", broken)

        async def fine() -> None:
            return None

        return await queue.run("a", fine) and not queue.running and not queue.dirty

    assert asyncio.run(scenario())
