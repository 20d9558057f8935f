"""The progress key without `lookup`: the chart renders no key (the operator creates its
Secret at its first start), so `helm template` and Argo CD render the same manifests every
time and a sync never rotates the key. A Role lets the operator create that Secret and read
or update only it."""

from __future__ import annotations

from typing import Any

from .helm_cli import Helm, by_kind, only
from .test_chart import FULLNAME, env_of

SECRET = f"{FULLNAME}-progress-key"


def named(docs: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [doc for doc in by_kind(docs, kind) if doc["metadata"]["name"] == name]


def key_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    volumes = only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    [volume] = [v["secret"] for v in volumes if v["name"] == "progress-key"]
    return volume  # type: ignore[no-any-return]


def test_two_renders_are_identical_and_hold_no_key(helm: Helm) -> None:
    first, second = (helm.template_run({}) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout, "a render must not change between two syncs"
    assert by_kind(helm.template({}), "Secret") == []


def test_the_operator_may_create_its_key_secret_and_touch_only_that_one(helm: Helm) -> None:
    docs = helm.template({})
    [role] = named(docs, "Role", SECRET)
    assert role["metadata"]["namespace"] == "prs-system"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET],
         "verbs": ["get", "update"]}]
    [binding] = named(docs, "RoleBinding", SECRET)
    assert binding["metadata"]["namespace"] == "prs-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": SECRET}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "prs-system"}]
    env = env_of(only(docs, "Deployment"))
    assert (env["PRS_PROGRESS_KEY_SECRET"], env["PRS_PROGRESS_KEY_SECRET_NAMESPACE"]) == (
        SECRET, "prs-system")
    assert key_volume(docs) | {"secretName": SECRET, "optional": True} == key_volume(docs)


def test_an_existing_secret_is_only_mounted(helm: Helm) -> None:
    docs = helm.template({"progressKey": {"existingSecret": "my-key"}})
    assert named(docs, "Role", SECRET) == [] and named(docs, "RoleBinding", SECRET) == []
    assert "PRS_PROGRESS_KEY_SECRET" not in env_of(only(docs, "Deployment"))
    # The user's Secret must exist: a typo keeps the pod from starting, visibly.
    assert key_volume(docs) | {"secretName": "my-key", "optional": False} == key_volume(docs)


def test_without_rbac_no_key_role_is_rendered(helm: Helm) -> None:
    docs = helm.template({"rbac": {"create": False}})
    assert named(docs, "Role", SECRET) == []
    assert env_of(only(docs, "Deployment"))["PRS_PROGRESS_KEY_SECRET"] == SECRET
