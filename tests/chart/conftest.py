"""The chart tier: the real helm CLI (built from Helm's Go module) lints and renders the chart.
A missing or unbuildable helm binary fails these tests; it never skips them."""

from __future__ import annotations

import pytest

from .helm_cli import Helm, prebuild_helm, session_helm


def pytest_collection_finish(session: pytest.Session) -> None:
    prebuild_helm(session)


@pytest.fixture(scope="session")
def helm() -> Helm:
    return session_helm()
