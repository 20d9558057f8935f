"""`kill -USR1 <operator pid>`: what every asyncio task awaits and every thread runs, written to
the log. An operator that stops handling events shows no error; this shows where it waits."""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import signal
import sys

logger = logging.getLogger(__name__)


def install(loop: asyncio.AbstractEventLoop) -> None:
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)


def dump_tasks() -> None:
    text = io.StringIO()
    tasks = sorted(asyncio.all_tasks(), key=lambda task: task.get_name())
    for task in tasks:
        text.write(f"--- {task.get_name()}: {task!r:.300}\n")
        task.print_stack(limit=12, file=text)
    logger.warning("%d asyncio tasks (threads: kill -USR2):\n%s", len(tasks), text.getvalue())
