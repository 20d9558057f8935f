"""The HTML run report of a real `prs run`, opened in headless Chromium: it renders without a
console message, shows one timeline row per worker process, and shows a hostile error
message as text. `prs report` rebuilds the same page."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.conftest import MakeStep, StepDir

# Chromium prints each console message (log, error, an uncaught exception, a refused script)
# on stderr under --enable-logging=stderr as `[...:INFO:CONSOLE:1] "text", source: ...`
# (`CONSOLE(1)` in older releases).
CONSOLE_LINE = re.compile(r":CONSOLE[:(][^\]]*\] (.*)$", re.MULTILINE)
LANE = re.compile(r'<g class="lane" data-shard="(\d+)" data-process="(\d+)">')
HOSTILE = "</script><script>console.error('injected')</script>"

FAILING = f"""
import time
def run(mini_batch):
    for path in mini_batch:
        if int(open(path).read()) % 5 == 3:
            raise ValueError("item " + path[-8:] + " {HOSTILE}")
        time.sleep(0.04)
    return mini_batch
"""


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (Debian's "
                    "package; .ci/run installs it)")
    return path


def open_headless(page: Path) -> tuple[str, list[str]]:
    """PAGE rendered by headless Chromium: its DOM after load, and its console messages."""
    shown = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout, CONSOLE_LINE.findall(shown.stderr)


def test_the_browser_check_catches_a_broken_or_refused_script(tmp_path: Path) -> None:
    """What the report's check relies on: a failing script and a script the page's policy
    refuses both show up as console messages."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>notDefined();</script>")
    _, console = open_headless(broken)
    assert any("ReferenceError: notDefined is not defined" in line for line in console), console
    refused = tmp_path / "refused.html"
    refused.write_text('<!DOCTYPE html><meta http-equiv="Content-Security-Policy" '
                       "content=\"default-src 'none'\"><script>var x = 1;</script>")
    _, console = open_headless(refused)
    assert any("Content Security Policy" in line for line in console), console


def failing_run(make_step: MakeStep) -> StepDir:
    step = make_step(FAILING, files=24, miniBatchSize="1", nodeCount=2, processCountPerNode=2,
                     errorThreshold=-1, miniBatchErrorThreshold=-1, runMaxTry=2)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    return step


def test_a_run_report_renders_with_a_row_per_process(make_step: MakeStep) -> None:
    step = failing_run(make_step)
    page = step.out / "_prs/report/index.html"
    dom, console = open_headless(page)
    assert console == []
    rows = step.report_rows()
    ran = {(int(r["shard"]), int(r["process"])) for r in rows
           if r["status"] in ("succeeded", "failed")}
    assert len(ran) >= 2
    lanes = [(int(shard), int(process)) for shard, process in LANE.findall(dom)]
    assert lanes == sorted(ran)  # one row per process that ran, in shard and process order
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 5  # items 3, 8, 13, 18, 23
    assert "<script" not in dom.split("</head>", 1)[1]  # the message is text, not a script
    assert dom.count("&lt;/script&gt;&lt;script&gt;console.error('injected')") >= len(failed)
    for row in failed:  # each failure links its worker's log at the line of its traceback
        assert f'href="../logs/{row["shard"]}/{row["process"]}.log"' in dom
        assert f'id="mini-batch-{row["id"]}"' in dom
    assert dom.count("<summary>traceback</summary>") == len(failed)


def test_prs_report_rebuilds_the_page_and_prints_where_it_is(make_step: MakeStep) -> None:
    step = failing_run(make_step)
    page = step.out / "_prs/report/index.html"
    written = page.read_bytes()
    page.unlink()
    rebuilt = prs_report(str(step.out))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout == f"{page}\n"
    assert page.read_bytes() == written


@pytest.mark.parametrize(("target", "says"), [
    ("nowhere", "holds no _prs/ folder: it is not a step's output"),
    ("bogus://bucket/out", "unknown scheme bogus://"),
])
def test_prs_report_on_something_else_says_so_in_one_line(
    tmp_path: Path, target: str, says: str
) -> None:
    refused = prs_report(target if "://" in target else str(tmp_path / target))
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert says in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr


def prs_report(target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "report",
                           target], capture_output=True, text=True, timeout=60)
