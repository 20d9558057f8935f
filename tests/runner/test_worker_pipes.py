"""A script that writes to its worker's pipes: the pipe to the shard (a descriptor it did not
open) or the pipe from it (its read end, opened again for writing through /proc/self/fd,
as any script can). The worker is replaced with one clear line, and nothing is lost or
reported that did not happen (docs/concepts.md, the fault table)."""

from __future__ import annotations

import pytest

from tests.runner.conftest import MakeStep, StepDir

FORGED_DONE = (b'{"done": [{"done": 99, "succeeded": 1, "failed": 0, "rows": 1, '
               b'"status": "succeeded"}], "requests": 0}\n')
NOT_A_MESSAGE = (" to its pipe to the shard, not a runner message: its script wrote to a file "
                 "descriptor it did not open; a new worker runs on")
DOES_NOT_FIT = (" to the shard, a runner message that does not fit the commands it was sent: "
                "its script wrote to one of its pipes; a new worker runs on")
NOT_A_COMMAND = (" from its pipe from the shard, not a command the shard sent: its script wrote "
                 "to one of its pipes; a new worker runs on")
EVENTS, COMMANDS = "os.O_WRONLY", "os.O_RDONLY"  # the worker's end of each pipe

# Writes written.bin to the worker's pipe ends of mode MODE: in init() (INIT), or in run()
# once, on the mini-batch of ITEM. AGAIN: the first mini-batch, run a second time, returns
# nothing (the one the tests forge a run of).
# Marks: wrote, ran (each call of run()), shutdown.
PIPE_WRITER = """
import fcntl, os
WRITTEN = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "written.bin"),
               "rb").read()
def write_pipes():
    mark("wrote")
    for fd in range(3, 64):
        try:
            if (os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
                    and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == MODE):
                end = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
                os.write(end, WRITTEN)
                os.close(end)
        except OSError:
            pass  # not open
def init():
    if INIT:
        write_pipes()
def run(mini_batch):
    mark("ran", mini_batch[0].rsplit("/", 1)[-1])
    flag = mini_batch[0] + ".ran"
    again = os.path.exists(flag)
    open(flag, "a").close()
    if AGAIN and again and mini_batch[0].endswith("item0000.txt"):
        return []
    if mini_batch[0].endswith(ITEM) and not again:
        write_pipes()
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
def shutdown():
    mark("shutdown")
"""


def pipe_writer(mode: str, item: str = "item0002.txt", init: bool = False,
                again: bool = False) -> str:
    return f"import os\nMODE, ITEM, INIT, AGAIN = {mode}, {item!r}, {init}, {again}\n" + (
        PIPE_WRITER)


def assert_replaced_once(step: StepDir, said: str, files: int = 6) -> None:
    """The run went on with one worker replaced, saying SAID (after 'worker process 0 '),
    and every item ran once into the output."""
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"shard 0: worker process 0 {said}" in result.stderr
    assert result.stderr.count("shard 0: ") == 1
    assert len(step.marks("wrote")) == 1
    assert sorted(step.output_lines()) == [f"item{i:04d}.txt" for i in range(files)]
    assert [r["status"] for r in step.report_rows()] == ["succeeded"] * (files // 2)
    error = step.job_result()["firstError"]
    assert error["type"] == "WorkerPipeError"
    assert error["message"].startswith(f"worker process 0 {said}".removesuffix(
        "; a new worker runs on"))


@pytest.mark.parametrize(("written", "said"), [
    (b"not a runner message\n", "wrote 'not a runner message'" + NOT_A_MESSAGE),
    (b"no newline, glued to the next message",
     "wrote 'no newline, glued to the next message"),
    (b'{"done": 5}\n', """wrote '{"done": 5}'""" + NOT_A_MESSAGE),  # a key, not its shape
    (FORGED_DONE, """sent '{"done": [{"done": 99, """),  # its shape, never sent mini-batch 99
    (b'{"ran": 1}\n', """sent '{"ran": 1}'""" + DOES_NOT_FIT),  # only where commits are grouped
    (b"Y" * (16 << 20), "wrote '" + "Y" * 80 + "'... ("),  # no newline: not read to its end
    (b'{"stray_command": "x\\nSucceeded: all is well"}\n',  # a worker's is one short line
     """wrote '{"stray_command": "x\\\\nSucceeded: all is well"}'""" + NOT_A_MESSAGE),
], ids=["junk", "glued", "a key", "forged", "ran", "16 MB", "forged stray command"])
def test_a_script_writing_to_its_workers_pipe_gets_one_clear_error_and_loses_nothing(
        make_step: MakeStep, written: bytes, said: str) -> None:
    """What it writes there is no runner message, or not one that fits what the worker was
    sent. The worker is replaced (what it committed counts, what it was running is tried
    again), and the run goes on; it used to crash the shard with a traceback."""
    step = make_step(pipe_writer(EVENTS), files=6, processCountPerNode=1, miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(written)
    assert_replaced_once(step, said)


@pytest.mark.parametrize(("written", "said"), [
    (b"junk\n", "read 'junk'" + NOT_A_COMMAND),
    (b"junk glued to the next command", "read 'junk glued to the next command{"),
    (b'{"run": 2}\n', """read '{"run": 2}'""" + NOT_A_COMMAND),  # no try
    (b'{"run": 99, "try": 1}\n',  # no such mini-batch
     """read '{"run": 99, "try": 1}'""" + NOT_A_COMMAND),
    (b'{"run": 0, "try": 1}\n',  # a command's shape, not sent: its 'done' does not fit
     """sent '{"done": [{"done": 0, """),
    (b'{"stop": true}\n', "read a stop" + NOT_A_COMMAND),  # it stops, and says so
    (b"Z" * (1 << 20), "read '" + "Z" * 80 + "'... ("),  # taken once longer than a command
], ids=["junk", "glued", "no try", "no such mini-batch", "not sent", "stop", "1 MB"])
def test_a_script_writing_to_its_workers_command_pipe_gets_one_clear_error_and_loses_nothing(
        make_step: MakeStep, written: bytes, said: str) -> None:
    """The worker acts only on commands its shard sends (it used to die of a KeyError or a
    JSONDecodeError, the shard saying only that it exited with code 1). Written from a
    thread: a write larger than the pipe holds would block run() itself."""
    step = make_step(pipe_writer(COMMANDS).replace(
        "        write_pipes()\n    return",
        "        import threading\n        threading.Thread(target=write_pipes).start()\n"
        "        import time\n        time.sleep(0.2)\n    return"),
        files=16, processCountPerNode=1, miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(written)
    assert_replaced_once(step, said, files=16)


def test_a_forged_run_of_a_mini_batch_already_done_does_not_replace_its_result(
        make_step: MakeStep) -> None:
    """Its 'done' does not fit, so the worker is replaced; the record it committed ran on a
    command the shard never sent, and does not count (the last record used to win: here
    one that returned nothing, two items failed in a run that 'Succeeded')."""
    step = make_step(pipe_writer(COMMANDS, again=True), files=16, processCountPerNode=1,
                     miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(b'{"run": 0, "try": 1}\n')
    assert_replaced_once(step, """sent '{"done": [{"done": 0, """, files=16)
    assert step.marks("ran").count("item0000.txt") == 2
    assert {r["failed"] for r in step.report_rows()} == {"0"}


def test_a_forged_run_whose_worker_dies_before_saying_it_does_not_count(
        make_step: MakeStep) -> None:
    """The forged run of mini-batch 0 (which returns nothing) is committed, and the worker
    exits in its next run(), a second forged one: its loss is settled by its log, where the
    forged record is one more than the shard sent, and does not count. (Its 'done' is said
    at once, failed items are never held: on a loaded machine the shard may read it and
    replace the worker before that next run() starts; the record does not count either
    way.)"""
    script = pipe_writer(COMMANDS, again=True)
    script = script.replace("    if AGAIN and again and", """\
    dead = os.path.join(os.path.dirname(mini_batch[0]), "died")
    if os.path.exists(dead) and not os.path.exists(dead + ".done"):
        open(dead + ".done", "w").close()
        os._exit(5)
    if AGAIN and again and mini_batch[0].endswith("item0000.txt"):
        open(dead, "w").close()
    if AGAIN and again and""", 1)
    step = make_step(script, files=16, processCountPerNode=1, miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(b'{"run": 0, "try": 1}\n' * 2)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(step.output_lines()) == [f"item{i:04d}.txt" for i in range(16)]
    assert {r["failed"] for r in step.report_rows()} == {"0"}
    died = step.marks("ran").count("item0000.txt") == 3  # the real run and both forged ones
    assert died or 'does not fit the commands it was sent' in result.stderr, result.stderr


def test_a_forged_error_that_fits_does_not_void_the_result_it_was_forged_over(
        make_step: MakeStep) -> None:
    """A script can forge an 'error' for the mini-batch it is in: the shard takes it (with
    runMaxTry 1 it commits that failure), then the worker's own 'done' does not fit and it
    is replaced. The worker's record came from the shard's command: it counts, and wins
    over the failure."""
    step = make_step(pipe_writer(EVENTS, item="item0000.txt"), files=8,
                     processCountPerNode=1, miniBatchSize="2", runMaxTry=1)
    (step.root / "src" / "written.bin").write_bytes(
        b'{"error": {"type": "X", "message": "forged"}, "id": 0, "seconds": 0}\n')
    step.run()
    assert sorted(step.output_lines()) == [f"item{i:04d}.txt" for i in range(8)]
    assert step.report_rows()[0]["status"] == "succeeded"


@pytest.mark.parametrize(("written", "again", "forged"), [
    (b"junk after the last command\n", False, 0),
    (b'{"run": 0, "try": 1}\n', True, 1),  # runs mini-batch 0 again, which returns nothing
], ids=["junk", "a run of a mini-batch already done"])
def test_what_a_script_writes_to_its_command_pipe_in_the_last_mini_batch_is_said_too(
        make_step: MakeStep, written: bytes, again: bool, forged: int) -> None:
    """The shard sends its stop after the last mini-batch and used to read no more: a
    forged run there replaced a result (two items lost, the run 'Succeeded'), and junk
    there went unsaid, shutdown() not called."""
    step = make_step(pipe_writer(COMMANDS, item="item0006.txt", again=again), files=8,
                     processCountPerNode=1, miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(written)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("shard 0: worker process 0 ") == 1
    # The worker reads what was written before the stop, so what it says of it may reach
    # the shard after the stop, or with the last result: then the worker is replaced as
    # mid-run, and its replacement, still in init() at the end, is not waited for.
    after_stop = (f"(after its last mini-batch; {forged} records of mini-batches the shard "
                  "did not send do not count)") in result.stderr
    assert after_stop or result.stderr.endswith("; a new worker runs on\n"), result.stderr
    assert step.job_result()["firstError"]["type"] == "WorkerPipeError"
    assert sorted(step.output_lines()) == [f"item{i:04d}.txt" for i in range(8)]
    rows = step.report_rows()
    assert [(r["status"], r["failed"], r["tries"]) for r in rows] == [("succeeded", "0", "1")] * 4
    shutdowns = len(step.marks("shutdown"))
    assert shutdowns == 1 or (shutdowns == 0 and not after_stop)
    assert sorted(step.marks("ran")) == sorted(
        [f"item{i:04d}.txt" for i in range(0, 8, 2)] + ["item0000.txt"] * forged)


def test_a_script_writing_to_its_pipe_in_every_init_fails_the_step_saying_so(
        make_step: MakeStep) -> None:
    step = make_step(pipe_writer(EVENTS, init=True), files=2, processCountPerNode=1)
    (step.root / "src" / "written.bin").write_bytes(b"junk from init\n")
    result = step.run()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    job = step.job_result()
    assert job["reason"] == "InitFailed"
    assert "WorkerPipeError: worker process 0 wrote 'junk from init'" in job["message"]


def test_a_script_writing_to_its_command_pipe_in_every_init_fails_the_step_saying_so(
        make_step: MakeStep) -> None:
    """The worker reads it where its first command should be: it ran nothing, so no try of
    any mini-batch is spent (every mini-batch was reported failed after runMaxTry tries,
    with a line per try, though run() was never called)."""
    step = make_step(pipe_writer(COMMANDS, init=True), files=8, processCountPerNode=1,
                     miniBatchSize="2")
    (step.root / "src" / "written.bin").write_bytes(b"junk at init\n")
    result = step.run()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("read 'junk at init'") == 3  # INIT_MAX_TRIES
    job = step.job_result()
    assert job["reason"] == "InitFailed"
    assert "WorkerPipeError: worker process 0 read 'junk at init'" in job["message"]
    assert step.marks("ran") == []
    assert all(r["status"] != "failed" and r["tries"] in ("", "0") for r in step.report_rows())
