"""The step model: a ParallelRunStep spec as loaded, defaulted, overridden and validated
(the API server's rules, offline), and the error thresholds that decide when a run has
failed. Pure and light: it imports only the standard library and PyYAML, never storage,
pandas, pyarrow, numpy, kubernetes or kopf, so the operator and `prs validate` share it."""
