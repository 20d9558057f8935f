"""Fixtures of the images tier: a real Docker engine, the local base image, the project's
images. Missing prerequisites fail the tests that need them; nothing is skipped."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .docker_engine import (
    DockerEngine,
    DockerError,
    build_operator_image,
    build_runner_image,
)

IMAGE_FIXTURES = {"docker_engine", "base_image", "runner_image", "operator_image"}


@dataclass
class Prepared:
    engine: DockerEngine | None = None
    base: str = ""
    runner: str = ""
    error: str = ""


# Filled before the first test runs (outside any per-test timeout): the first run installs
# docker.io, debootstraps the base image and downloads the wheels, which takes minutes.
_prepared: list[Prepared] = []


def prepare() -> Prepared:
    """Engine, base image, runner image, once per session; the first error is kept."""
    if not _prepared:
        done = Prepared()
        _prepared.append(done)
        try:
            done.engine = DockerEngine.start()
            done.base = done.engine.base_image()
            done.runner = build_runner_image(done.engine, done.base)
        except (DockerError, OSError) as exc:
            done.error = str(exc)
    return _prepared[0]


def fail_unless(value: str | DockerEngine | None) -> None:
    if not value:
        pytest.fail(f"images tier prerequisites unavailable: {prepare().error}", pytrace=False)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any(IMAGE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("images tier: starting the Docker engine, building the images ...")
    done = prepare()
    if reporter is not None:
        reporter.write_line(f"images tier: {done.engine.started if done.engine else done.error}")


@pytest.fixture(scope="session")
def docker_engine() -> DockerEngine:
    """A running engine (tools/start-docker.sh): ``docker(*args)``, ``build(...)``,
    ``run_restricted(image, command, mounts)``, ``image_size(tag)``."""
    engine = prepare().engine
    fail_unless(engine)
    assert engine is not None
    return engine


@pytest.fixture(scope="session")
def base_image() -> str:
    """The BASE_IMAGE for the project's Dockerfiles: Debian + python3, made locally."""
    fail_unless(prepare().base)
    return prepare().base


@pytest.fixture(scope="session")
def runner_image() -> str:
    """The runner image built from runner-image/Dockerfile on ``base_image``."""
    fail_unless(prepare().runner)
    return prepare().runner


@pytest.fixture(scope="session")
def operator_image(docker_engine: DockerEngine, base_image: str) -> str:
    """The operator image built from operator/Dockerfile on ``base_image``."""
    try:
        return build_operator_image(docker_engine, base_image)
    except DockerError as exc:
        pytest.fail(f"operator image: {exc}", pytrace=False)
