"""Output: what a finished mini-batch leaves behind and what the step delivers. A result is
committed once per mini-batch into its worker's commit log (`_prs/commits/`), encoded as its
append_row bytes; the merge streams the committed results in mini-batch order into the
output file and writes the report. It may use planning (to read the plan), storage and the
step model."""
