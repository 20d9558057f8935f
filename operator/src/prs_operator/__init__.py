"""The ParallelRunStep operator: plan Job, Indexed Job and merge Job per step."""
