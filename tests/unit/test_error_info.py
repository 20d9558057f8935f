"""How an error is told in one line (with where the script raised it) and in full."""

from __future__ import annotations

import pytest

from prs_runner.output.results import ErrorInfo

TRACEBACK = '''Traceback (most recent call last):
  File "/runner/prs_runner/execution/worker.py", line 261, in serve
    ran = worker.run_one(command["run"], command["try"])
  File "/work/src/score.py", line 12, in run
    raise ValueError("cannot score")
ValueError: cannot score
'''


@pytest.mark.parametrize(("error", "expected"), [
    (ErrorInfo("ValueError", "cannot score", TRACEBACK, 2, ("a.txt", "b.txt")),
     "ValueError: cannot score in mini-batch 2 (items: a.txt, b.txt) at score.py:12 in run"),
    (ErrorInfo("ValueError", "cannot score", "", 2, ("a", "b", "c", "d")),
     "ValueError: cannot score in mini-batch 2 (items: a, b, c, ...)"),
    (ErrorInfo("WorkerDied", "exited with code 3"), "WorkerDied: exited with code 3"),
    (ErrorInfo("KeyError", "'x'", '  File "score.py", line 3, in <module>\n'),
     "KeyError: 'x' at score.py:3 in <module>"),
    (ErrorInfo("E", "m", "  File no quotes, line 3, in f\n"), "E: m"),
], ids=["traceback", "no-traceback", "no-mini-batch", "module-level", "not-a-frame"])
def test_one_line(error: ErrorInfo, expected: str) -> None:
    assert error.one_line() == expected


def test_to_dict_keeps_the_whole_traceback() -> None:
    error = ErrorInfo("ValueError", "cannot score", TRACEBACK, 2, ("a.txt",))
    data = error.to_dict()
    assert data == {"type": "ValueError", "message": "cannot score", "traceback": TRACEBACK,
                    "miniBatch": 2, "items": ["a.txt"]}
