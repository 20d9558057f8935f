"""`prs run` with its input and output on real object-storage servers (SeaweedFS for S3,
Azurite for Azure Blob, fake-gcs-server for GCS): files and tabular input, every output
format, a kill and a rerun, a server that goes away mid-run, two runs on one output, and
the one-line errors of a wrong bucket, key or credential."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prs_runner.commands.prs_cli import STOP_GRACE_SECONDS
from prs_runner.execution.committer import FLUSH_SECONDS
from prs_runner.output.commit_index import chosen
from prs_runner.output.commit_log import read_commits
from prs_runner.storage.filesystem import Storage
from tests.storage.conftest import MakeStorageServer
from tests.storage_servers import KINDS, StorageServer

SCRIPT = '''
import os, time
def init():
    pass
def run(mini_batch):
    delay = float(os.environ.get("SCENARIO_DELAY", "0"))
    calls = os.environ.get("SCENARIO_CALLS")
    if isinstance(mini_batch, list):
        rows = [f"{os.path.basename(p)} {open(p).read().strip()} {p.startswith('/tmp')}"
                for p in mini_batch]
    else:
        rows = mini_batch
    if calls:
        with open(calls, "a") as log:
            log.write(f"{len(mini_batch)}\\n")
    time.sleep(delay)
    return rows
'''


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> StorageServer:
    fixture = {"s3": "s3_server", "azure": "azure_server", "gcs": "gcs_server"}[request.param]
    found: StorageServer = request.getfixturevalue(fixture)
    return found


def storage(server: StorageServer, path: str, monkeypatch: pytest.MonkeyPatch) -> Storage:
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    return Storage(server.uri(path))


def write_step(tmp_path: Path, spec: dict[str, Any]) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(SCRIPT)
    body = {"code": {"entryScript": "score.py", "sourceDirectory": str(code)},
            "nodeCount": 2, "processCountPerNode": 2, **spec}
    document = {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
                "metadata": {"name": "remote"}, "spec": body}
    path = tmp_path / "step.yaml"
    path.write_text(json.dumps(document))
    return path


def prs_run(step: Path, server: StorageServer, *args: str, wait: bool = True,
            **env: str) -> Any:
    command = [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step), *args]
    full_env = {**os.environ, **server.env, **env}
    work = step.parent / "work"  # an empty working folder: nothing may land in it
    work.mkdir(exist_ok=True)
    if not wait:
        return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=work)
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300,
                          cwd=work)


def run_tmpdir(tmp_path: Path) -> Path:
    """A TMPDIR of the run's own: what its shards and workers leave on local disk."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    return folder


def held_input(tmpdir: Path, timeout: float = 10) -> list[Path]:
    """The input files the workers hold in TMPDIR, once they hold some (a mini-batch's
    folder is removed as its result commits: there may be a moment with none)."""
    deadline = time.monotonic() + timeout
    while not (held := list(tmpdir.glob("prs-shard-*/workers/prs-input-*/*/*/*"))):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return held


def input_step(tmp_path: Path, server: StorageServer, monkeypatch: pytest.MonkeyPatch,
               files: dict[str, bytes], **spec: Any) -> tuple[Path, Storage]:
    """A step over FILES (name: bytes), written to a new prefix; its output there."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    source = storage(server, f"{prefix}/in", monkeypatch)
    for name, data in files.items():
        source.write_atomic(name, data)
    step = write_step(tmp_path, {"input": {"type": "files", "uri": server.uri(f"{prefix}/in")},
                                 "output": {"uri": server.uri(f"{prefix}/out")}, **spec})
    return step, storage(server, f"{prefix}/out", monkeypatch)


def files_step(tmp_path: Path, server: StorageServer, monkeypatch: pytest.MonkeyPatch,
               count: int, **spec: Any) -> tuple[Path, Storage]:
    files = {f"part{n % 3}/item{n:04d}.txt": f"{n}\n".encode() for n in range(count)}
    return input_step(tmp_path, server, monkeypatch, files, **{"miniBatchSize": "3", **spec})


def expected_lines(count: int) -> list[str]:
    names = sorted(f"part{n % 3}/item{n:04d}.txt" for n in range(count))
    return [f"{name.split('/')[1]} {int(name[-8:-4])} True" for name in names]


def test_files_input_reaches_run_as_local_paths_and_the_output_is_in_order(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step, output = files_step(tmp_path, server, monkeypatch, 40)
    done = prs_run(step, server)
    assert done.returncode == 0, done.stderr
    lines = output.read_bytes("parallel_run_step.txt").decode().splitlines()
    assert lines == expected_lines(40)  # each once, in input order, read from /tmp copies
    report = json.loads(output.read_bytes("_prs/report/job_result.json"))
    assert report["miniBatches"]["succeeded"] == 14
    requests = report["storageRequests"]  # what the step cost in object-store calls
    assert requests["plan"] >= 2  # the output's probe and the input's listing, at least
    assert requests["shards"] >= 40 + 14  # a download per file, a commit per mini-batch
    assert requests["merge"] >= 14 + 3  # a read per record, the output, its copy, the report
    paths = [e.path for e in output.list_files()]
    assert not any(path.startswith("_prs/lock.d/") for path in paths)
    assert {"_prs/logs/0/0.log", "_prs/logs/1/1.log"} <= set(paths)  # uploaded at the end
    assert not any((tmp_path / "work").iterdir())  # nothing written beside the run


def test_a_run_that_starts_over_leaves_nothing_of_the_last(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed code starts over: the earlier run's commits go with the rest of _prs/. On
    GCS a listing of one level names no folder that has no object of its own, so the old
    commits stayed and counted for the new plan: the new code never ran, the output held
    the old code's results, and the step said Succeeded (with --fresh too)."""
    step, output = files_step(tmp_path, server, monkeypatch, 6, nodeCount=1)
    assert prs_run(step, server).returncode == 0
    (tmp_path / "code" / "score.py").write_text(
        "import os\ndef run(mini_batch):\n"
        "    return ['v2 ' + os.path.basename(p) for p in mini_batch]\n")
    for fresh in ((), ("--fresh",)):
        done = prs_run(step, server, *fresh)
        assert done.returncode == 0, done.stderr
        lines = output.read_bytes("parallel_run_step.txt").decode().splitlines()
        assert lines == [f"v2 {line.split()[0]}" for line in expected_lines(6)]


@pytest.mark.parametrize(("source_format", "row_format", "file_name"), [
    ("csv", "csv", "out.csv"), ("parquet", "parquet", "out.parquet"),
])
def test_tabular_input_and_output_formats(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    source_format: str, row_format: str, file_name: str,
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    table = pa.table({"key": list(range(3000)), "square": [n * n for n in range(3000)]})
    source = storage(server, f"{prefix}/in", monkeypatch)
    with source.open_write(f"table.{source_format}") as stream:
        if source_format == "csv":
            stream.write(table.to_pandas().to_csv(index=False).encode())
        else:
            pq.write_table(table, stream, row_group_size=500)
    step = write_step(tmp_path, {
        "input": {"type": "tabular", "uri": server.uri(f"{prefix}/in")},
        "output": {"uri": server.uri(f"{prefix}/out")}, "miniBatchSize": "2KB",
        "appendRowFormat": row_format, "appendRowFileName": file_name,
        "nodeCount": 1})  # what a mini-batch costs, without shards taking work from another
    done = prs_run(step, server)
    assert done.returncode == 0, done.stderr
    output = storage(server, f"{prefix}/out", monkeypatch)
    with output.open_seekable(file_name) as stream:
        data = stream.read()
    if row_format == "parquet":
        merged = pq.read_table(pa.BufferReader(data)).to_pandas()
    else:
        import io

        import pandas as pd

        merged = pd.read_csv(io.BytesIO(data))
    assert merged.iloc[:, 0].tolist() == list(range(3000))
    assert merged.iloc[:, 1].tolist() == [n * n for n in range(3000)]
    report = json.loads(output.read_bytes("_prs/report/job_result.json"))
    mini_batches, shards = report["miniBatches"]["total"], report["storageRequests"]["shards"]
    assert mini_batches >= 6
    # A worker keeps its file open and its CSV header: a mini-batch costs one ranged read
    # (Parquet: its row groups, up to two), a commit-log part two uploads, and each of the
    # 2 workers a few calls of its own (the file's size and footer, the plan, its logs).
    parts = [n for n in output.list_names("_prs/commits") if n.endswith(".idx")]
    assert len(parts) <= mini_batches
    reads = 1 if source_format == "csv" else 2
    assert shards <= reads * mini_batches + 2 * len(parts) + 2 * 6, (shards, len(parts))


def test_a_killed_run_resumes_and_runs_each_mini_batch_once(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step, output = files_step(tmp_path, server, monkeypatch, 36)
    calls = tmp_path / "calls.log"
    # 12 mini-batches of 3 files on 4 workers. Each takes DELAY seconds, so the run lasts
    # about 3 DELAY: long enough that the kill lands mid-run even though commits become
    # visible only when a commit-log part is flushed (up to FLUSH_SECONDS later), and the
    # machine is loaded.
    delay = 1.5
    tmpdir = run_tmpdir(tmp_path)
    first = prs_run(step, server, wait=False, SCENARIO_DELAY=str(delay),
                    SCENARIO_CALLS=str(calls), TMPDIR=str(tmpdir))
    wait_for_commits(output, 4)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    before = len(committed(output))
    assert 4 <= before < 12
    assert list(tmpdir.glob("prs-shard-*/side")) or list(tmpdir.glob("prs-shard-*/staging"))
    second = prs_run(step, server, SCENARIO_CALLS=str(calls), TMPDIR=str(tmpdir))
    assert second.returncode == 0, second.stderr
    assert list(tmpdir.iterdir()) == []  # the killed shards' scratch folders went too
    assert output.read_bytes("parallel_run_step.txt").decode().splitlines() == expected_lines(36)
    runs = calls.read_text().splitlines()
    # The rerun ran only what was not committed. In flight at the kill, per worker: the one
    # running, and what ran in the last FLUSH_SECONDS, held for the next commit-log part.
    in_flight = 1 + math.ceil(FLUSH_SECONDS / delay)
    steals = [n for n in output.list_names("_prs/steals") if n.endswith(".json")]
    assert len(runs) <= 12 + in_flight * 4 + len(steals)


def wait_for_commits(output: Storage, count: int, timeout: float = 60) -> None:
    """Until COUNT mini-batches are committed (the test's own asserts say if they never are)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(committed(output)) < count:
        time.sleep(0.05)


def committed(output: Storage) -> list[int]:
    """The mini-batches with a committed record."""
    return sorted(chosen(read_commits(output)))


def started_with_commits(tmp_path: Path, server: StorageServer,
                         monkeypatch: pytest.MonkeyPatch, count: int,
                         delay: str) -> tuple[subprocess.Popen[str], Storage]:
    """`prs run` of COUNT files, SCENARIO_DELAY seconds each, started and let run until two
    mini-batches are committed; the process and its output."""
    step, output = files_step(tmp_path, server, monkeypatch, count)
    running = prs_run(step, server, wait=False, SCENARIO_DELAY=delay)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(committed(output)) < 2:
        time.sleep(0.1)
    return running, output


def test_a_server_away_for_a_few_seconds_mid_run(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clients retry: the run completes with every item once and in order, or fails with
    one line naming the URI; never a corrupt or partial output."""
    running, output = started_with_commits(tmp_path, server, monkeypatch, 30, "0.3")
    server.stop()
    time.sleep(3)
    server.start()
    _, stderr = running.communicate(timeout=300)
    if running.returncode == 0:
        text = output.read_bytes("parallel_run_step.txt").decode()
        assert text.splitlines() == expected_lines(30)
    else:
        assert "Traceback" not in stderr, stderr
        assert server.uri("") in stderr or "mini-batch" in stderr, stderr
        assert "parallel_run_step.txt" not in output.list_names("")


def test_an_azure_outage_of_fifteen_seconds_is_ridden_out(
    azure_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow's Azure client gives up after ~5 s (S3's and GCS's retry about a minute, as
    the docs promise for all three): the shards failed at once, ShardFailed."""
    running, output = started_with_commits(tmp_path, azure_server, monkeypatch, 30, "0.3")
    azure_server.stop()
    time.sleep(15)
    azure_server.start()
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 0, stderr
    text = output.read_bytes("parallel_run_step.txt").decode()
    assert text.splitlines() == expected_lines(30)


@pytest.mark.parametrize("second", [False, True], ids=["one SIGTERM", "two"])
def test_sigterm_while_the_store_does_not_answer_ends_prs_all_the_same(
    make_storage_server: MakeStorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    second: bool
) -> None:
    """The store is frozen mid-run (SIGSTOP) and `prs run` gets SIGTERM: it tries to stop
    as usual, and ends within STOP_GRACE_SECONDS saying so, or at once on a second SIGTERM
    (it waited on the store, where no handler runs, until SIGKILL)."""
    server = make_storage_server("s3")
    running, _ = started_with_commits(tmp_path, server, monkeypatch, 60, "0.05")
    server.pause()
    try:
        time.sleep(1)
        running.send_signal(signal.SIGTERM)
        told = time.monotonic()
        if second:
            time.sleep(1)
            running.send_signal(signal.SIGTERM)
        _, stderr = running.communicate(timeout=STOP_GRACE_SECONDS + 20)
        took = time.monotonic() - told
    finally:
        server.resume()
    if second:
        assert running.returncode == -signal.SIGTERM and took < 5, (took, stderr)
    else:
        assert running.returncode == 128 + signal.SIGTERM, stderr
        assert took < STOP_GRACE_SECONDS + 5, took
        assert stderr.splitlines()[-1] in (
            "terminated (SIGTERM): run `prs run` again to resume",
            f"prs: stopping on SIGTERM took longer than {STOP_GRACE_SECONDS:.0f} s (is the "
            "output's storage answering?); ended without waiting: run `prs run` again to "
            "resume"), stderr
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_leaves_only_the_workers_logs_on_local_disk(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped shard uploads nothing more: the input files its workers held go, their
    logs stay where one line says."""
    step, output = files_step(tmp_path, s3_server, monkeypatch, 48)
    tmpdir = run_tmpdir(tmp_path)
    # 16 mini-batches of 1 s on 4 workers: still running once the first commits show
    running = prs_run(step, s3_server, wait=False, SCENARIO_DELAY="1.0", TMPDIR=str(tmpdir))
    wait_for_commits(output, 2)
    held = held_input(tmpdir)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=STOP_GRACE_SECONDS + 20)
    assert running.returncode == 128 + signal.SIGINT, stderr
    assert held, "no worker held a mini-batch's files"
    kept = sorted(tmpdir.glob("prs-shard-*/*"))
    assert [path.name for path in kept] == ["staging", "staging"]  # one per shard
    for shard, folder in enumerate(sorted(kept, key=lambda p: p.parent.name)):
        assert f"shard {shard}: the logs of its workers are at {folder}" in stderr
    assert any(path.is_file() for path in tmpdir.glob("prs-shard-*/staging/logs/*"))
    # The next run's shards leave them there: only a dead shard's folder is swept.
    rerun = prs_run(step, s3_server, TMPDIR=str(tmpdir))
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(tmpdir.glob("prs-shard-*/*")) == kept


def test_two_runs_on_one_output_one_is_refused(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step, output = files_step(tmp_path, server, monkeypatch, 12)
    first = prs_run(step, server, wait=False, SCENARIO_DELAY="1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not output.list_names("_prs/lock.d"):
        time.sleep(0.1)
    second = prs_run(step, server)
    assert second.returncode == 2, second.stderr
    assert "is in use by pid" in second.stderr
    assert first.wait(120) == 0
    assert output.read_bytes("parallel_run_step.txt").decode().splitlines() == expected_lines(12)


@pytest.mark.parametrize("case", ["wrong-bucket", "wrong-key", "missing-prefix"])
def test_bad_places_and_credentials_are_one_line_naming_the_uri(
    server: StorageServer, tmp_path: Path, case: str
) -> None:
    uri = server.uri("nothing/here")
    env = dict(server.env)
    if case == "wrong-bucket":
        uri = uri.replace("prs-test", "no-such-bucket")
    elif case == "wrong-key":
        env = wrong_credentials(env)
    step = write_step(tmp_path, {"input": {"type": "files", "uri": uri},
                                 "output": {"uri": str(tmp_path / "out")}})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step)],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # (a spec problem: a list)
    assert uri in done.stderr, done.stderr
    assert time.monotonic() - started < 30  # at once: not a minute of retries


def wrong_credentials(env: dict[str, str]) -> dict[str, str]:
    changed = dict(env)
    if "AWS_SECRET_ACCESS_KEY" in changed:
        changed["AWS_SECRET_ACCESS_KEY"] = "wrong-secret"
    if "AZURE_STORAGE_CONNECTION_STRING" in changed:
        changed["AZURE_STORAGE_CONNECTION_STRING"] = changed[
            "AZURE_STORAGE_CONNECTION_STRING"].replace("AccountKey=Eby8", "AccountKey=AAAA")
        changed.pop("AZURE_STORAGE_ACCOUNT_KEY", None)
    if "STORAGE_EMULATOR_HOST" in changed:  # the emulator takes any credentials: an endpoint
        changed["STORAGE_EMULATOR_HOST"] = "http://127.0.0.1:9"  # where nothing listens
    return changed


@pytest.mark.parametrize("fixture", ["s3_server", "azure_server"])
def test_missing_credentials_are_one_line_saying_where_they_were_looked_for(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """(fake-gcs-server takes any request, so a refused GCS credential cannot be made here.)"""
    server: StorageServer = request.getfixturevalue(fixture)
    env = {k: v for k, v in server.env.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_ACCOUNT_KEY")}
    if "AZURE_STORAGE_CONNECTION_STRING" in env:
        env["AZURE_STORAGE_CONNECTION_STRING"] = ";".join(
            part for part in env["AZURE_STORAGE_CONNECTION_STRING"].split(";")
            if not part.startswith("AccountKey="))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_"))}
    step = write_step(tmp_path, {"input": {"type": "files", "uri": server.uri("in")},
                                 "output": {"uri": str(tmp_path / "out")}})
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step)],
                          env={**base, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert server.uri("in") in done.stderr
    assert ("no AWS credentials in the environment" in done.stderr
            or "no account key or SAS token" in done.stderr), done.stderr
    assert not (tmp_path / "out").exists()


def test_a_key_with_dot_dot_is_named_at_planning_never_downloaded(
    azure_server: StorageServer, tmp_path: Path
) -> None:
    """Azurite keeps a blob named `in/a/../../escape.txt` as written (SeaweedFS refuses such a
    key, fake-gcs-server and pyarrow normalise it): downloaded by its name it would land
    outside the worker's cache folder. Planning names it and nothing runs."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    blobs = azure_server.filesystem()
    for key in ("ok.txt", "a/../../escape.txt"):
        with blobs.open_output_stream(f"prs-test/{prefix}/in/{key}") as stream:
            stream.write(b"1\n")
    source = azure_server.uri(f"{prefix}/in")
    step = write_step(tmp_path, {"input": {"type": "files", "uri": source},
                                 "output": {"uri": str(tmp_path / "out")}})
    done = prs_run(step, azure_server)
    assert done.returncode == 2, done.stderr
    assert "'a/../../escape.txt': an empty, '.' or '..' segment in the key" in done.stderr
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out").exists()


SIDE_SCRIPT = '''
import os
from prs_runner.entry_script import side_inputs_from_env
def run(mini_batch):
    sides = side_inputs_from_env()
    offset = int(open(sides["offset"]).read())
    table = os.path.join(sides["tables"], "sub", "names.txt")
    names = open(table).read().split()
    return [f"{names[int(open(p).read()) % len(names)]} {int(open(p).read()) + offset}"
            for p in mini_batch]
'''


def test_side_inputs_on_object_storage_reach_workers_as_local_copies(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One object (a file path) and a prefix (a folder), downloaded once per shard."""
    step, output = files_step(tmp_path, server, monkeypatch, 9)
    prefix = server.uri("").rstrip("/")
    document = json.loads(step.read_text())
    sides = storage(server, f"{document['spec']['input']['uri'][len(prefix) + 1:-3]}/sides",
                    monkeypatch)
    sides.write_atomic("offset.txt", b"1000")
    sides.write_atomic("tables/sub/names.txt", b"ann bob cid")
    (tmp_path / "code" / "score.py").write_text(SIDE_SCRIPT)
    document["spec"]["sideInputs"] = [{"name": "offset", "uri": sides.uri_of("offset.txt")},
                                      {"name": "tables", "uri": sides.uri_of("tables")}]
    step.write_text(json.dumps(document))
    tmpdir = run_tmpdir(tmp_path)
    done = prs_run(step, server, TMPDIR=str(tmpdir))
    assert done.returncode == 0, done.stderr
    lines = output.read_bytes("parallel_run_step.txt").decode().splitlines()
    numbers = sorted(range(9), key=lambda n: f"part{n % 3}/item{n:04d}.txt")
    assert lines == [f"{['ann', 'bob', 'cid'][n % 3]} {n + 1000}" for n in numbers]
    assert list(tmpdir.iterdir()) == []  # the side inputs' and inputs' copies are gone


OUTPUT_DIR_SCRIPT = '''
import os
from prs_runner.entry_script import EntryScript
def run(mini_batch, context):
    folder = os.path.join(EntryScript().output_dir, "extra")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{context.minibatch_index}.txt"), "w") as out:
        out.write(str(len(mini_batch)))
    return [os.path.basename(p) for p in mini_batch]
'''


def test_files_run_writes_to_output_dir_reach_the_output(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """output_dir is a local folder per shard, uploaded into the output when it ends."""
    step, output = files_step(tmp_path, server, monkeypatch, 7)
    (tmp_path / "code" / "score.py").write_text(OUTPUT_DIR_SCRIPT)
    tmpdir = run_tmpdir(tmp_path)
    done = prs_run(step, server, TMPDIR=str(tmpdir))
    assert done.returncode == 0, done.stderr
    extra = sorted(e.path for e in output.list_files() if e.path.startswith("extra/"))
    assert extra == ["extra/0.txt", "extra/1.txt", "extra/2.txt"]
    assert output.read_bytes("extra/2.txt") == b"1"
    assert list(tmpdir.iterdir()) == []  # uploaded: the staged files are gone


def test_a_killed_worker_loses_nothing_while_its_record_uploads(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an object store a worker uploads one record while run() goes on with the next
    mini-batch: killed then, whatever it committed counts once, the rest runs again."""
    step, output = files_step(tmp_path, server, monkeypatch, 48)
    calls = tmp_path / "calls.log"
    # 16 mini-batches of 1 s on 4 workers: still running when the first commits are visible
    # (a commit-log part is flushed up to FLUSH_SECONDS after its mini-batch ends).
    tmpdir = run_tmpdir(tmp_path)
    running = prs_run(step, server, wait=False, SCENARIO_DELAY="1.0", SCENARIO_CALLS=str(calls),
                      TMPDIR=str(tmpdir))
    wait_for_commits(output, 3)
    workers = subprocess.run(["pgrep", "-f", f"prs_runner.execution.worker {server.uri('')}"],
                             capture_output=True, text=True).stdout.split()
    assert workers, "no worker to kill"
    downloaded = held_input(tmpdir)
    os.kill(int(workers[0]), signal.SIGKILL)
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 0, stderr
    assert downloaded, "no worker held a mini-batch's files"
    assert list(tmpdir.iterdir()) == []  # the killed worker's copies too
    assert output.read_bytes("parallel_run_step.txt").decode().splitlines() == expected_lines(48)
    report = json.loads(output.read_bytes("_prs/report/job_result.json"))
    assert report["miniBatches"] == {"total": 16, "succeeded": 16, "failed": 0, "pending": 0}


def test_small_mini_batches_share_commit_log_parts(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """90 one-file mini-batches: their records go up in a few parts, not one object each,
    and a resume or merge reads those few."""
    step, output = files_step(tmp_path, server, monkeypatch, 90, miniBatchSize="1",
                              nodeCount=1)
    done = prs_run(step, server)
    assert done.returncode == 0, done.stderr
    assert output.read_bytes("parallel_run_step.txt").decode().splitlines() == expected_lines(90)
    names = output.list_names("_prs/commits")
    parts = [n for n in names if n.endswith(".idx")]
    assert len(parts) <= 90 // 4, parts
    assert sorted(n[:-4] for n in names if n.endswith(".dat")) == sorted(p[:-4] for p in parts)
    requests = json.loads(output.read_bytes("_prs/report/job_result.json"))["storageRequests"]
    # A download per file, two uploads per part, a few calls per worker, and the shard's
    # listing of its log folder for earlier runs' metric marks: no longer a PUT per
    # mini-batch.
    assert requests["shards"] <= 90 + 2 * len(parts) + 2 * 6 + 1, (requests, len(parts))


SKEWED = '''
import os, time
def run(mini_batch):
    for path in mini_batch:
        if int(open(path).read()) < 15:
            time.sleep(0.2)
    return [os.path.basename(p) for p in mini_batch]
'''


def one_per_mini_batch(server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       count: int, script: str, **spec: Any) -> Storage:
    """COUNT files of one size, one per mini-batch, run by SCRIPT on 2 shards; the output,
    checked to hold each once and in order."""
    files = {f"item{n:04d}.txt": f"{n:04d}".encode() for n in range(count)}
    step, output = input_step(tmp_path, server, monkeypatch, files, miniBatchSize="1", **spec)
    (tmp_path / "code" / "score.py").write_text(script)
    done = prs_run(step, server)
    assert done.returncode == 0, done.stderr
    lines = output.read_bytes("parallel_run_step.txt").decode().splitlines()
    assert lines == [f"item{n:04d}.txt" for n in range(count)]
    return output


def test_shards_take_work_from_each_other_on_an_object_store(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of one size, one per mini-batch: the plan gives the first half (slow) to shard 0;
    shard 1 takes some of them through steal marks in the bucket, and the output is the
    same. One server: what differs between stores is covered above."""
    output = one_per_mini_batch(s3_server, tmp_path, monkeypatch, 30, SKEWED,
                                processCountPerNode=1)
    steals = [n for n in output.list_names("_prs/steals") if n.endswith(".json")]
    assert steals
    report = output.read_bytes("_prs/report/processed_mini_batches.csv").decode().splitlines()
    ran_by = {int(row.split(",")[0]): int(row.split(",")[1]) for row in report[1:]}
    assert any(ran_by[n] == 1 for n in range(15)), ran_by


SLOW_FIRST_TEN = '''
import os, time
def run(mini_batch):
    time.sleep(0.4 if int(open(mini_batch[0]).read()) < 10 else 0.05)
    return [os.path.basename(p) for p in mini_batch]
'''


def test_a_shard_takes_back_neither_what_it_runs_nor_what_it_ran(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 shards x 2 processes, the first ten mini-batches slow: shard 1 takes from shard 0
    while an object store's commits show a second late. A thief leaves what its own workers
    hold or have finished (shard 0 took back what it ran: it ran some twice, and said try 2
    and 3 of mini-batches no try of which failed), takes what its victim reaches last (it
    took what the victim ran a moment ago), and leaves what the victim probably ran since
    its newest commit it can read."""
    output = one_per_mini_batch(s3_server, tmp_path, monkeypatch, 60, SLOW_FIRST_TEN)
    records = [commit.header for commit in read_commits(output)]
    assert {header.tries for header in records} == {1}
    ran_where = [(header.id, header.shard) for header in records]
    assert len(ran_where) == len(set(ran_where)), sorted(ran_where)
    steals = [n for n in output.list_names("_prs/steals") if n.endswith(".json")]
    assert any(n.endswith("-0-1.json") for n in steals), steals
    # What runs twice is what a victim held when the mark was written, and what it ran since
    # its newest readable commit at a pace the thief could not know (its mini-batches turn
    # fast): a few, not a third of the input (it was 9 to 20 of 60; now 3 to 7, mostly 6).
    assert len(records) - 60 <= 8, sorted(ran_where)


def test_shards_with_even_work_do_not_rob_each_other_on_an_object_store(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 mini-batches of 10 ms on 2 shards x 2 processes: each shard finishes its share
    before the other's commits show. Neither takes the other's (they ran 114 times: each
    took what the other had already run)."""
    output = one_per_mini_batch(s3_server, tmp_path, monkeypatch, 60, (
        "import os, time\ndef run(mini_batch):\n    time.sleep(0.01)\n"
        "    return [os.path.basename(p) for p in mini_batch]\n"))
    assert len(read_commits(output)) <= 60 + 4


EVERY_TENTH_SLOW_AFTER_A_SLOW_INIT = '''
import os, time
def init():
    time.sleep(1.6)  # a model load: every shard's first commits come late
def run(mini_batch):
    time.sleep(0.4 if int(open(mini_batch[0]).read()) % 10 == 0 else 0.05)
    return [os.path.basename(p) for p in mini_batch]
'''


def test_a_thief_reads_each_worker_of_its_victim_and_waits_for_their_first_commits(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 shards x 2 processes with even shares (every tenth mini-batch slow) after an init()
    longer than the wait for a victim's first commits. A thief waited from when its shard
    began, not from when its first mini-batch ended, so it took half of a victim whose
    commits could not show yet; and it counted from the newest commit of any worker of a
    victim, while each worker flushes its own a second apart: 39 of 60 ran twice (16
    without the slow init())."""
    output = one_per_mini_batch(s3_server, tmp_path, monkeypatch, 60,
                                EVERY_TENTH_SLOW_AFTER_A_SLOW_INIT, nodeCount=3)
    records = [commit.header for commit in read_commits(output)]
    assert len(records) <= 60 + 4, sorted((header.id, header.shard) for header in records)


METRICS_SCRIPT = '''
import os
def run(mini_batch):
    if os.environ.get("SCENARIO_METRICS"):
        from azureml.core import Run
        Run.get_context().log("files", len(mini_batch))
    return [os.path.basename(p) for p in mini_batch]
'''


def test_azure_run_metrics_reach_the_report_and_a_resume_keeps_them(
    server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers' marks are uploaded with their logs: the merge reads those logs, and a
    later run over the same output (here one logging nothing) still finds them."""
    step, output = files_step(tmp_path, server, monkeypatch, 9)
    (tmp_path / "code" / "score.py").write_text(METRICS_SCRIPT)
    done = prs_run(step, server, SCENARIO_METRICS="1")
    assert done.returncode == 0, done.stderr
    marked = [(o["shard"], p) for o in (json.loads(output.read_bytes(f"_prs/shards/{i}.json"))
                                         for i in range(2)) for p in o["metricsLogged"]]
    assert marked and all(output.read_bytes(f"_prs/logs/{s}/{p}.metrics") == b""
                          for s, p in marked)
    page = output.read_bytes("_prs/report/index.html").decode()
    assert '<td>files</td><td>metric</td><td class="n">3</td>' in page  # 3 mini-batches
    again = prs_run(step, server)  # the same step and input: its result is reused
    assert again.returncode == 0, again.stderr
    assert '<td>files</td><td>metric</td>' in output.read_bytes(
        "_prs/report/index.html").decode()
