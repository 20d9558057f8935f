"""On an object store a worker says 'ran' when run() returns, and its commit follows in a
commit-log part: a worker that dies in between has its mini-batch run again without a
failed try. Not for ever: a worker that dies there every time costs tries after runMaxTry
free runs, and the run ends (it used to run it again for ever)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from prs_runner.storage.filesystem import Storage
from tests.storage_servers import StorageServer

# The worker dies between 'ran' and its commit, every time mini-batch 2 runs: as a worker
# killed during its upload would, here by writing the 'ran' itself and exiting.
SCRIPT = '''
import json, os
def run(mini_batch):
    name = os.path.basename(mini_batch[0])
    if name == "item0002.txt":
        with open(os.environ["SCENARIO_TRIES"], "a") as tries:
            tries.write("try\\n")
        for fd in range(3, 64):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                    os.write(fd, json.dumps({"ran": 2}).encode() + b"\\n")
            except OSError:
                pass
        os._exit(3)
    return [name]
'''


def test_a_worker_that_dies_before_every_commit_of_a_mini_batch_ends_it_failed(
        s3_server: StorageServer, tmp_path: Path) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    os.environ.update(s3_server.env)
    source = Storage(s3_server.uri(f"{prefix}/in"))
    for number in range(6):
        source.write_atomic(f"item{number:04d}.txt", f"{number}\n".encode())
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    spec = {"code": {"entryScript": "score.py", "sourceDirectory": str(code)},
            "input": {"type": "files", "uri": s3_server.uri(f"{prefix}/in")},
            "output": {"uri": s3_server.uri(f"{prefix}/out")},
            "miniBatchSize": "1", "nodeCount": 1, "processCountPerNode": 1, "runMaxTry": 2}
    step = tmp_path / "step.yaml"
    step.write_text(json.dumps({"apiVersion": "parallelrun.io/v1alpha1",
                                "kind": "ParallelRunStep", "metadata": {"name": "dies"},
                                "spec": spec}))
    tries = tmp_path / "tries.log"
    done = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step)],
        env={**os.environ, **s3_server.env, "SCENARIO_TRIES": str(tries)},
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "Traceback" not in done.stderr
    # runMaxTry free runs, then runMaxTry tries: it was run 4 times, not for ever
    assert tries.read_text().count("try") == 4
    output = Storage(s3_server.uri(f"{prefix}/out"))
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(
        output.read_bytes("_prs/report/processed_mini_batches.csv").decode()))}
    assert len(rows) == 6
    assert {row["status"] for row in rows.values()} <= {"succeeded", "failed"}  # all ran
    assert (rows["2"]["status"], rows["2"]["tries"]) == ("failed", "2")
    assert rows["2"]["error"].endswith(
        "(mini-batch 2: run() returned, and its commit was lost 4 times)")
    # The others in its unwritten commit-log parts were lost with it, as often: runMaxTry
    # free runs each too, then tries; those that failed say why
    lines = output.read_bytes("parallel_run_step.txt").decode().splitlines()
    assert lines == [f"item{i:04d}.txt" for i in range(6)
                     if rows[str(i)]["status"] == "succeeded"]
    assert all(row["error"].startswith("WorkerDied: worker process exited with code 3 (")
               for row in rows.values() if row["status"] == "failed")
