"""The ParallelRunStep runner: everything that runs a step's user code, locally (`prs run`)
and in the operator's pods (`prs-runner`).

Its parts, in the order a step meets them, each a subpackage that may import only the parts
below it (the import-linter contract in `pyproject.toml` checks this):

    commands   the `prs` and `prs-runner` command lines and the pod phases
    execution  the local orchestrator, shard supervisors, workers and their processes
    output     committed results, the merge, the append_row writers and the report
    planning   the input listing cut into mini-batches and shards; reading one back
    storage    the one door to every filesystem: listing, reading, writing, deleting
    step       the ParallelRunStep model: spec, validation, error thresholds

`prs_runner.entry_script` is the one module meant for entry scripts to import.
"""
