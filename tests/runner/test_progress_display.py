"""What a person sees while `prs run` works: a live bar on a terminal (a real pseudo-terminal
here), plain lines in a log, both with mini-batches and items done, rate, ETA and failures."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

from tests.runner.conftest import MakeStep

SCRIPT = """
import time
def init():
    pass
def run(mini_batch):
    time.sleep(0.05)
    if any(path.endswith("item0007.txt") for path in mini_batch):
        raise ValueError("seven")
    return list(mini_batch)
"""


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_terminal_shows_a_bar_with_items_failures_rate_and_eta(make_step: MakeStep) -> None:
    step = make_step(SCRIPT, files=40, errorThreshold=-1, nodeCount=1, processCountPerNode=2)
    controller, terminal = pty.openpty()
    # 80 columns, the narrowest common width: the rate and the ETA must still show
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step.step)],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown = read_all(controller).decode()
    os.close(controller)
    assert process.wait(timeout=120) == 0, shown
    last_bar = [part for part in shown.split("\r") if "mini-batches," in part][-1]
    assert "100%|" in last_bar
    assert "20/20 mini-batches, 40 items, 1 failed (2 items)  ETA 00:00" in last_bar
    assert last_bar.rstrip().endswith("/s"), last_bar  # nothing cut at 80 columns


def test_a_log_gets_plain_lines_without_carriage_returns(make_step: MakeStep) -> None:
    step = make_step(SCRIPT, files=40, errorThreshold=-1, nodeCount=1, processCountPerNode=2)
    done = step.run()
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert "mini-batches: 19 succeeded, 1 failed" in done.stdout + done.stderr


def test_output_json_prints_one_document_for_scripts(make_step: MakeStep) -> None:
    step = make_step(SCRIPT, files=40, errorThreshold=-1, nodeCount=2, processCountPerNode=1)
    planned = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "plan", str(step.step),
         "-o", "json"], capture_output=True, text=True, timeout=120)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["miniBatchCount"] == 20 and plan["items"] == 40
    assert [shard["shard"] for shard in plan["shards"]] == [0, 1]
    assert sum(shard["miniBatches"] for shard in plan["shards"]) == 20
    done = step.run("-o", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # nothing else on stdout
    assert result["status"] == "Succeeded" and result["reused"] is False
    assert result["miniBatches"] == {"total": 20, "succeeded": 19, "failed": 1, "pending": 0}
    page = str(step.out / "_prs/report/index.html")
    assert result == {**step.job_result(), "reused": False, "report": page,
                      "processCountPerNode": None}
    (step.out / "_prs/report/index.html").unlink()  # as in an output merged before pages
    again = step.run()
    assert again.returncode == 0, again.stderr
    assert f"  report: {page}\n" in again.stdout
    assert "reused the result of an earlier identical run" in again.stdout
    assert (step.out / "_prs/report/index.html").is_file()  # built for the reused result
