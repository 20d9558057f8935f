"""The chart tier: the real helm CLI (built from Helm's Go module) lints and renders the chart,
and helm-docs (built from its Go module) regenerates its README. A missing or unbuildable
binary fails these tests; it never skips them."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .chart_readme import HelmDocsError, build_helm_docs, session_helm_docs
from .helm_cli import Helm, prebuild_helm, session_helm
from .promtool_cli import PromtoolError, build_promtool, session_promtool


def pytest_collection_finish(session: pytest.Session) -> None:
    prebuild_helm(session)
    # Outside any test's timeout: the first build of helm-docs takes a minute or more.
    if not session.config.option.collectonly and any(
        "helm_docs" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        # On failure the helm_docs fixture builds again and fails the test with the reason.
        with contextlib.suppress(HelmDocsError):
            build_helm_docs()
    if not session.config.option.collectonly and any(
        "promtool" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        with contextlib.suppress(PromtoolError):  # the fixture fails the test with the reason
            build_promtool()


@pytest.fixture(scope="session")
def helm() -> Helm:
    return session_helm()


@pytest.fixture(scope="session")
def helm_docs() -> Path:
    """The helm-docs binary built from its Go module (tools/build-helm-docs.sh)."""
    return session_helm_docs()


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool built from Prometheus' Go module (tools/build-promtool.sh)."""
    return session_promtool()
