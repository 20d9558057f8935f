"""Planning: the input listing cut into mini-batches and assigned to shards (files by count,
tabular files by bytes, rows or partition keys), the plan written to and read from
`_prs/plan.json`, the fingerprint that decides reuse, and the reading of one tabular
mini-batch back exactly as it was cut. The cutting and assignment are pure; the scan and
the reader do their I/O through storage. It may use storage and the step model."""
