"""The helm CLI built from Helm's Go module (tools/build-helm.sh), and the chart it renders.

Shared by the chart tier (tests/chart) and the cluster tier's chart tests (tests/cluster).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.build_scripts import run_build_script

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "parallelrun-operator"
BUILD_SCRIPT = REPO / "tools" / "build-helm.sh"


class HelmError(RuntimeError):
    pass


def build_helm(timeout: float = 1800.0) -> Path:
    """Run tools/build-helm.sh (a no-op when the binary is cached) and return the binary."""
    binary = run_build_script(BUILD_SCRIPT, timeout, HelmError)
    if not binary.is_file():
        raise HelmError(f"{BUILD_SCRIPT.name} printed {binary}, which is not a file")
    return binary


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=check, timeout=120
        )

    def lint(self, values: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("lint", "--strict", str(CHART), *values_args(values))

    def template_run(
        self, values: Mapping[str, Any], release: str = "prs", namespace: str = "prs-system",
        *extra: str, chart: Path = CHART,
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template", release, str(chart), "--namespace", namespace, *values_args(values),
            *extra,
        )

    def template(
        self, values: Mapping[str, Any], release: str = "prs", namespace: str = "prs-system",
        include_crds: bool = False, include_tests: bool = False,
    ) -> list[dict[str, Any]]:
        """The rendered manifests, as parsed documents (empty documents dropped); the
        `helm test` hooks only with INCLUDE_TESTS (`helm install` creates none of them)."""
        extra = [*(["--include-crds"] if include_crds else []),
                 *([] if include_tests else ["--skip-tests"])]
        done = self.template_run(values, release, namespace, *extra)
        if done.returncode != 0:
            raise HelmError(f"helm template failed:\n{done.stderr}")
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    def notes(self, values: Mapping[str, Any]) -> str:
        """What `helm install` prints after installing (NOTES.txt), from a client-side dry
        run: `helm template` does not render the notes, and a client dry run needs no
        cluster."""
        done = self.run("install", "prs", str(CHART), "--namespace", "prs-system",
                        "--dry-run=client", *values_args(values))
        if done.returncode != 0:
            raise HelmError(f"helm install --dry-run=client failed:\n{done.stderr}")
        head, marker, notes = done.stdout.partition("\nNOTES:\n")
        if not marker:
            raise HelmError(f"helm install --dry-run=client printed no NOTES:\n{head[-2000:]}")
        return notes


def values_args(values: Mapping[str, Any]) -> list[str]:
    """--set-json flags, one a top-level key: values keep their JSON types (5 stays a number)."""
    return [f"--set-json={key}={json.dumps(value)}" for key, value in values.items()]


# The build runs once per session before the first test (outside the per-test timeout): the
# first build takes minutes, later runs find the binary in the cache.
_build: dict[str, Path | str] = {}


def prebuild_helm(session: pytest.Session) -> None:
    """Build helm before the tests start if any collected test uses the `helm` fixture."""
    if session.config.option.collectonly or "binary" in _build or "error" in _build:
        return
    if not any("helm" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("chart tests: building or finding the helm binary ...")
    try:
        _build["binary"] = build_helm()
    except HelmError as exc:
        _build["error"] = str(exc)


def session_helm() -> Helm:
    """The `helm` fixture's value; a missing binary fails the test, it never skips it."""
    if "error" in _build:
        pytest.fail(f"helm unavailable: {_build['error']}", pytrace=False)
    try:
        binary = Path(_build["binary"]) if "binary" in _build else build_helm()
    except HelmError as exc:
        pytest.fail(f"helm unavailable: {exc}", pytrace=False)
    return Helm(binary)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]
