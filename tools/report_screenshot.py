"""Take the screenshot of the HTML run report in docs/images/run-report.png.

Runs an example step with `prs run` (two shards of three workers; uneven mini-batches, one
that fails every try and one that succeeds on its second), then has headless Chromium
(Debian's `chromium` package) draw its `_prs/report/index.html`.

    .venv/bin/python tools/report_screenshot.py [--output docs/images/run-report.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = '''
import os
import time

def run(mini_batch):
    results = []
    for path in mini_batch:
        n = int(open(path).read())
        if n == 41:
            raise ValueError(f"item {n}: no price for product 'A-17'")
        flaky = os.path.join(os.path.dirname(os.path.dirname(path)), "tried-22")
        if n == 22 and not os.path.exists(flaky):
            open(flaky, "w").close()
            raise ConnectionError("feature store timed out (the retry succeeds)")
        time.sleep(0.03 + 0.02 * (n % 7) + (0.25 if n % 23 == 0 else 0))
        results.append(f"{n},{n * n}")
    return results
'''
WINDOW = "1040,1180"  # the outcome, the counts, the shards, the timeline and the throughput


def write_step(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir()
    for n in range(96):
        (data / f"item{n:04d}.txt").write_text(f"{n}\n")
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(textwrap.dedent(SCRIPT))
    step = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "score-products"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                 "input": {"type": "files", "uri": "./data"}, "output": {"uri": "./out"},
                 "miniBatchSize": "2", "nodeCount": 2, "processCountPerNode": 3,
                 "runMaxTry": 2, "errorThreshold": -1, "miniBatchErrorThreshold": -1},
    }
    path = folder / "step.yaml"
    path.write_text(yaml.safe_dump(step))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs/images/run-report.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="prs-report-shot-") as folder:
        step = write_step(Path(folder))
        ran = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run",
                              str(step)], capture_output=True, text=True)
        print(ran.stdout, end="")
        if ran.returncode not in (0, 1):  # 1: the step failed, its report is still written
            print(ran.stderr, file=sys.stderr)
            return 1
        page = Path(folder) / "out/_prs/report/index.html"
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={WINDOW}", f"--screenshot={args.output.resolve()}",
             page.as_uri()], capture_output=True, text=True, timeout=120)
        if shot.returncode != 0 or not args.output.exists():
            print(shot.stderr, file=sys.stderr)
            return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
