"""promtool built from Prometheus' Go module (tools/build-promtool.sh): `promtool check rules`
and `promtool test rules` on the chart's PrometheusRule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.build_scripts import run_build_script

from .helm_cli import REPO

BUILD_SCRIPT = REPO / "tools" / "build-promtool.sh"


class PromtoolError(RuntimeError):
    pass


def build_promtool(timeout: float = 1800.0) -> Path:
    """Run tools/build-promtool.sh (a no-op when the binary is cached); the binary's path."""
    binary = run_build_script(BUILD_SCRIPT, timeout, PromtoolError)
    if not binary.is_file():
        raise PromtoolError(f"{BUILD_SCRIPT.name} printed {binary}, which is not a file")
    return binary


def session_promtool() -> Path:
    """The `promtool` fixture's value; a missing binary fails the test, it never skips it."""
    try:
        return build_promtool()
    except PromtoolError as exc:
        pytest.fail(f"promtool unavailable (run tools/build-promtool.sh): {exc}", pytrace=False)
