"""Azure's settings under `prs run` and `prs validate`, as a migrating user writes them:
lowercase size units, no processCountPerNode (one worker per CPU), and Azure's field names
(every mistake reported at once, each with the field to write instead)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from tests.runner.conftest import MakeStep
from tests.runner.test_tabular import assert_succeeded, tabular_step


def test_lowercase_units_size_tabular_mini_batches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"file": "a", "id": range(3000)}).to_csv(data / "a.csv", index=False)
    size = (data / "a.csv").stat().st_size
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"},
                        miniBatchSize="4kb")
    result = assert_succeeded(step)
    assert result["items"]["total"] == 3000
    assert result["miniBatches"]["total"] == -(-size // 4096)  # 1024-based, as "4KB"


def test_without_process_count_one_worker_per_cpu(make_step: MakeStep) -> None:
    script = "import os\ndef run(mini_batch):\n    mark('pids')\n    return mini_batch\n"
    step = make_step(script, files=40, miniBatchSize="1")
    result = step.run()
    assert result.returncode == 0, result.stderr
    cpus = len(os.sched_getaffinity(0))
    logs = sorted(p.name for p in (step.out / "_prs" / "logs" / "0").iterdir())
    assert logs == [f"{i}.log" for i in range(cpus)]
    assert (f"  processes: {cpus} per shard, one per CPU (the CPUs this process may run on: "
            f"{cpus}, over 1 shard(s)); processCountPerNode sets another number") in (
        result.stdout)
    # The shard's outcome says it too (a pod's choice reaches the run report that way).
    assert json.loads((step.out / "_prs/shards/0.json").read_text())["processes"] == cpus
    page = (step.out / "_prs/report/index.html").read_text()
    assert f'<td>succeeded</td><td class="n">{cpus}</td>' in page


def test_validate_names_every_azure_spelling_at_once(tmp_path: Path) -> None:
    document = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "migrated"},
        "spec": {"code": {"entry_script": "score.py", "sourceDirectory": "."},
                 "input": {"type": "files", "uri": "."}, "output": {"uri": "./out"},
                 "mini_batch_size": "10", "node_count": 2, "error_threshold": 5,
                 "max_concurrency_per_instance": 4, "loggingLevel": "debug"},
    }
    (tmp_path / "step.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "validate",
         str(tmp_path / "step.yaml")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for line in (
        "spec.mini_batch_size: unknown field; did you mean spec.miniBatchSize? "
        "(mini_batch_size is Azure's spelling)",
        "spec.node_count: unknown field; did you mean spec.nodeCount?",
        "spec.error_threshold: unknown field; did you mean spec.errorThreshold?",
        "spec.max_concurrency_per_instance: unknown field; did you mean "
        "spec.processCountPerNode? (max_concurrency_per_instance is Azure's name)",
        "spec.code.entry_script: unknown field; did you mean spec.code.entryScript?",
        "spec.code.entryScript: required",
        "spec.loggingLevel: must be one of WARNING, INFO, DEBUG (got 'debug')",
    ):
        assert line in result.stderr, (line, result.stderr)
