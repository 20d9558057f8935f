"""How `prs status` and `prs logs` find the cluster and the namespace, as kubectl does: a
real kubeconfig file read by the real client (no API server is contacted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prs_operator.kube_access import AccessError, connect

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "team",
    "clusters": [{"name": "c1", "cluster": {"server": "https://one.example:6443"}},
                 {"name": "c2", "cluster": {"server": "https://two.example:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "team", "context": {"cluster": "c1", "user": "u",
                                              "namespace": "team-a"}},
                 {"name": "bare", "context": {"cluster": "c2", "user": "u"}}],
}


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config to fall back on
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.mark.parametrize(("context", "host", "namespace"), [
    (None, "https://one.example:6443", "team-a"),  # the current context's namespace
    ("bare", "https://two.example:6443", "default"),  # a context without one: default
])
def test_context_and_its_namespace(kubeconfig: Path, context: str | None, host: str,
                                   namespace: str) -> None:
    api, found = connect(str(kubeconfig), context)
    assert (api.configuration.host, found) == (host, namespace)


def test_kubeconfig_from_the_environment_several_files(kubeconfig: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    other = kubeconfig.parent / "empty"
    other.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config"}))
    monkeypatch.setenv("KUBECONFIG", f"{other}:{kubeconfig}")
    api, namespace = connect(None, None)
    assert (api.configuration.host, namespace) == ("https://one.example:6443", "team-a")


def test_the_flag_wins_over_the_environment(kubeconfig: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig.parent / "missing"))
    assert connect(str(kubeconfig), None)[1] == "team-a"


def test_no_kubeconfig_and_no_pod_says_what_to_do(kubeconfig: Path) -> None:
    with pytest.raises(AccessError, match=r"^no kubeconfig: pass --kubeconfig FILE or set "
                                          r"KUBECONFIG"):
        connect(None, None)


@pytest.mark.parametrize(("text", "context", "problem"), [
    (yaml.safe_dump(KUBECONFIG), "nowhere", "nowhere"),
    ("not: [a kubeconfig", None, ""),
])
def test_a_bad_kubeconfig_is_one_line_naming_the_file(tmp_path: Path, kubeconfig: Path,
                                                      text: str, context: str | None,
                                                      problem: str) -> None:
    broken = tmp_path / "broken"
    broken.write_text(text)
    with pytest.raises(AccessError) as raised:
        connect(str(broken), context)
    assert str(raised.value).startswith(f"kubeconfig {broken}: ") and problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unreachable_api_server_is_one_line(kubeconfig: Path) -> None:
    """The real command, in a process of its own, against a port nothing listens on."""
    import subprocess
    import sys

    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # discard: closed
    kubeconfig.write_text(yaml.safe_dump(config))
    for command in ("status", "logs"):
        done = subprocess.run(
            [sys.executable, "-m", "prs_runner.commands.prs_cli", command, "x", "--kubeconfig",
             str(kubeconfig)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"prs {command}: cannot reach the API server at https://127.0.0.1:9: "), done.stderr
