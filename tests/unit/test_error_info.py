"""How an error is told in one line (with where the script raised it) and in full."""

from __future__ import annotations

import pytest

from prs_runner.output.results import RUNNER_FOLDER as RUNNER
from prs_runner.output.results import ErrorInfo, first_of

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
    (ErrorInfo("SyntaxError", "expected ':' (score.py, line 2)",
               f'  File "{RUNNER}execution/worker.py", line 70, in import_entry_script\n'
               '  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed\n'
               '  File "/code/score.py", line 2\n'),
     "SyntaxError: expected ':' (score.py, line 2)"),  # no frame of the script's: no "at"
    (ErrorInfo("KeyError", "'x'", '  File "/code/score.py", line 9, in run\n'
               f'  File "{RUNNER}planning/tabular_reading.py", line 5, in read\n'),
     "KeyError: 'x' at score.py:9 in run"),  # the script's innermost frame, not the runner's
], ids=["traceback", "no-traceback", "no-mini-batch", "module-level", "not-a-frame", "syntax",
        "runner-frame-last"])
def test_one_line(error: ErrorInfo, expected: str) -> None:
    assert error.one_line() == expected


def test_to_dict_keeps_the_whole_traceback() -> None:
    error = ErrorInfo("ValueError", "cannot score", TRACEBACK, 2, ("a.txt",))
    data = error.to_dict()
    assert data == {"type": "ValueError", "message": "cannot score", "traceback": TRACEBACK,
                    "miniBatch": 2, "items": ["a.txt"]}


RAISED = ErrorInfo("RuntimeError", "store 3")
FEWER = ErrorInfo("FewerResults", "run() returned 1 elements for 2 inputs")
SKIPPED = ErrorInfo("CSVParseError", "Expected 2 columns")


@pytest.mark.parametrize(("errors", "expected"), [
    ([None, FEWER, RAISED], RAISED),  # many models: one row per partition is no failure
    ([SKIPPED, None], SKIPPED),
    ([RAISED, ErrorInfo("ValueError", "later")], RAISED),
    ([None, None], None),
    ([], None),
])
def test_the_first_error_is_one_that_was_raised(errors: list[ErrorInfo | None],
                                                expected: ErrorInfo | None) -> None:
    assert first_of(errors) is expected
