"""The one compiled module: the record scan of text inputs (runner-image/src/prs_runner/
planning/record_scan.c), which reads every byte of a CSV or JSON Lines input once before it
is cut. Everything else about the distribution is in pyproject.toml. Building it needs a C
compiler and the Python headers (python3-dev on Debian)."""

import os

from setuptools import Extension, setup

RECORD_SCAN = Extension(
    "prs_runner.planning.record_scan",
    sources=["runner-image/src/prs_runner/planning/record_scan.c"],
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)
# PRS_RECORD_SCAN=skip: a distribution for the operator's image, which plans nothing itself
# (its plan Jobs run the runner's image) and has no compiler; planning text inputs needs it.
setup(ext_modules=[] if os.environ.get("PRS_RECORD_SCAN") == "skip" else [RECORD_SCAN])
