"""Commands: the entry points. `prs` (run, validate, plan, and commands other packages
register, such as the operator's `submit`), `prs-runner` (what a pod executes: plan,
shard, merge, reuse) and the pod phases behind it. Argument parsing, exit codes and
one-line error messages live here; the work is done by the parts below."""
