"""Execution: running mini-batches. The local orchestrator of `prs run`, the shard
supervisor (the same code in a pod), the worker processes that call the entry script's
init()/run()/shutdown(), their environment and process groups, the thresholds applied on
the fly, and progress (the terminal bar, the pod's reports to the operator). It may use
output, planning, storage and the step model, never the commands."""
