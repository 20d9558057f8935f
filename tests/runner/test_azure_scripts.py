"""An entry script written for Azure ML runs unchanged under `prs run` (docs/azure-names.md):
its `azureml_user` and `azureml.core` imports are served, and what they answer is what the
worker's environment says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prs_runner.output.commit_log import read_commits
from prs_runner.storage.filesystem import Storage
from tests.runner.conftest import MakeStep

AZURE_SCRIPT = """
import argparse, json, os

def init():
    global MODEL_OFFSET, RUN, ARGS
    from azureml_user.parallel_run import EntryScript
    from azureml.core import Model, Run
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, required=True)
    ARGS, _ = parser.parse_known_args()
    with open(os.path.join(Model.get_model_path("mymodel"), "offset.txt")) as f:
        MODEL_OFFSET = int(f.read())
    RUN = Run.get_context()
    entry = EntryScript()
    seen = {"output_dir": entry.output_dir, "node_id": entry.node_id,
            "process_name": entry.process_name, "working_dir": entry.working_dir,
            "environment": {k: v for k, v in os.environ.items() if k.startswith("PRS_")}}
    # Written whole or not at all: a worker still in init() when its shard's work has run
    # out (the others took it all) is killed there, as the contract says.
    path = os.path.join(entry.log_dir, entry.agent_name + "_seen.json")
    with open(path + ".partial", "w") as f:
        json.dump(seen, f)
    os.replace(path + ".partial", path)

def run(mini_batch):
    from azureml_user.parallel_run import EntryScript
    results = []
    for path in mini_batch:
        with open(path) as f:
            value = int(f.read())
        results.append(f"{os.path.basename(path)} {value * ARGS.scale + MODEL_OFFSET}")
    EntryScript().logger.info("scored %d files", len(mini_batch))
    RUN.log("scored", len(mini_batch), description="files in the mini-batch")
    return results
"""

METRIC = re.compile(r"INFO prs\.metrics \[shard (\d+) process (\d+)\] (\{.*\})$")


def test_an_azure_style_script_runs_with_its_model_metrics_and_identity(
        make_step: MakeStep) -> None:
    step = make_step(AZURE_SCRIPT, files=20, nodeCount=2, processCountPerNode=2,
                     arguments=["--scale", "10", "--azure-only-flag", "x"],
                     sideInputs=[{"name": "mymodel", "uri": "./models/mymodel"}])
    (step.root / "models" / "mymodel").mkdir(parents=True)
    (step.root / "models" / "mymodel" / "offset.txt").write_text("7\n")
    result = step.run()
    assert result.returncode == 0, result.stderr + result.stdout
    assert step.output_lines() == [f"item{i:04d}.txt {i * 10 + 7}" for i in range(20)]

    logs = {path: path.read_text() for path in (step.out / "_prs/logs").rglob("*.log")}
    assert "scored 2 files" in "".join(logs.values())
    scored = lines = 0
    for path, text in logs.items():
        for line in text.splitlines():
            if match := METRIC.search(line):
                metric = json.loads(match[3])
                assert metric["metric"] == "scored"
                assert metric["description"] == "files in the mini-batch"
                # The line's shard and process are the worker's whose log holds it.
                assert (metric["shard"], metric["process"]) == (
                    int(match[1]), int(match[2])) == (int(path.parent.name), int(path.stem))
                scored += metric["value"]
                lines += 1
    # Every file, in the metric lines of the workers that ran it: once, or twice for a
    # mini-batch a worker held while the other shard took it (docs/concepts.md: both run,
    # both are committed). A line per committed record, 2 files each.
    assert scored == 2 * lines == 2 * len(read_commits(Storage(str(step.out)))) >= 20
    # The run report gathers them: one row for the metric, a value per line.
    page = (step.out / "_prs/report/index.html").read_text()
    metrics = page.split("<h2>Metrics</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<td>scored</td><td>metric</td><td class=\"n\">{lines}</td>" in metrics
    # Each shard names the workers whose logs hold metrics: those the merge reads.
    named = {(outcome["shard"], process)
             for outcome in (json.loads(p.read_text()) for p in
                             (step.out / "_prs/shards").glob("*.json"))
             for process in outcome["metricsLogged"]}
    holding = {(int(path.parent.name), int(path.stem)) for path, text in logs.items()
               if "prs.metrics" in text}
    assert named == holding and named

    seen_files = sorted((step.out / "logs/user/entry_script_log").glob("*/*_seen.json"))
    assert seen_files, "no worker wrote to EntryScript().log_dir"
    for path in seen_files:
        seen = json.loads(path.read_text())
        env = seen["environment"]
        assert seen["output_dir"] == env["PRS_OUTPUT_DIR"] == str(step.out)
        assert seen["node_id"] == int(env["PRS_SHARD_INDEX"]) == int(path.parent.name)
        assert seen["process_name"] == f"process{int(env['PRS_PROCESS_INDEX']):03d}"
        assert path.name == seen["process_name"] + "_seen.json"
        assert seen["working_dir"] == env["PRS_CODE_ROOT"]
        assert (Path(seen["working_dir"]) / "score.py").is_file()


REAL_PACKAGE_SCRIPT = """
def init():
    global source
    from azureml.core import Model
    source = Model.SOURCE  # the real package's; the runtime's Model has no such name

def run(mini_batch):
    return [source for _ in mini_batch]
"""


def test_a_real_azureml_package_wins_over_the_runtimes_names(make_step: MakeStep) -> None:
    """A script that ships (or has installed) the real `azureml` gets it, not the runtime's
    few names: they are served only when nothing else answers the import."""
    step = make_step(REAL_PACKAGE_SCRIPT, files=3)
    package = step.root / "src" / "azureml" / "core"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("class Model:\n    SOURCE = 'the real package'\n")
    result = step.run()
    assert result.returncode == 0, result.stderr + result.stdout
    assert step.output_lines() == ["the real package"] * 3


def test_a_run_without_metrics_has_no_metrics_table(make_step: MakeStep) -> None:
    step = make_step("def run(mini_batch):\n    return [1 for _ in mini_batch]\n", files=4,
                     nodeCount=2, processCountPerNode=1)
    result = step.run()
    assert result.returncode == 0, result.stderr + result.stdout
    outcomes = [json.loads(p.read_text()) for p in (step.out / "_prs/shards").glob("*.json")]
    assert len(outcomes) == 2 and all(o["metricsLogged"] == [] for o in outcomes)
    page = (step.out / "_prs/report/index.html").read_text()
    assert "<h2>Shards</h2>" in page and "<h2>Metrics</h2>" not in page


DYING_SCRIPT = """
import os

def run(mini_batch):
    if not os.path.exists(os.path.join(os.path.dirname(__file__), "died")):
        open(os.path.join(os.path.dirname(__file__), "died"), "w").close()
        from azureml.core import Run
        Run.get_context().log("last_words", 7)
        os._exit(3)  # killed before it could say anything more
    return [1 for _ in mini_batch]
"""


def test_metrics_of_a_worker_that_died_right_after_are_in_the_report(
        make_step: MakeStep) -> None:
    step = make_step(DYING_SCRIPT, files=4, nodeCount=1, processCountPerNode=1)
    result = step.run()
    assert result.returncode == 0, result.stderr + result.stdout
    outcome = json.loads((step.out / "_prs/shards/0.json").read_text())
    assert outcome["metricsLogged"] == [0]
    page = (step.out / "_prs/report/index.html").read_text()
    assert '<td>last_words</td><td>metric</td><td class="n">1</td><td>7</td>' in page


REFORMATTING_SCRIPT = """
import logging

def init():
    global RUN
    logging.basicConfig(force=True, format="%(levelname)s %(name)s: %(message)s")
    from azureml.core import Run
    RUN = Run.get_context()

def run(mini_batch):
    RUN.log("files", len(mini_batch))
    return [1 for _ in mini_batch]
"""


def test_a_script_that_reformats_logging_keeps_its_metrics(make_step: MakeStep) -> None:
    step = make_step(REFORMATTING_SCRIPT, files=4, nodeCount=1, processCountPerNode=1,
                     miniBatchSize="2")
    result = step.run()
    assert result.returncode == 0, result.stderr + result.stdout
    page = (step.out / "_prs/report/index.html").read_text()
    assert '<td>files</td><td>metric</td><td class="n">2</td><td>2</td>' in page
