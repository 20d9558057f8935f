"""The operator's RBAC rules (helm/parallelrun-operator/files/operator-rules.yaml) as sets of
single grants, and `kubectl auth can-i --list` output read into the same shape, so that what
the API server grants can be compared with what the operator needs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .helm_cli import CHART

RULES_FILE = CHART / "files" / "operator-rules.yaml"

# Resources that exist outside namespaces: in namespaced mode their rules go to the ClusterRole.
CLUSTER_SCOPED = frozenset({"customresourcedefinitions", "namespaces"})


class Grant(NamedTuple):
    """One verb on one resource (or non-resource URL); `resource` keeps a /subresource."""

    group: str
    resource: str
    verb: str
    resource_name: str = ""
    url: str = ""


def load_operator_rules(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    rules = yaml.safe_load(path.read_text())
    assert isinstance(rules, list), f"{path} is not a YAML list"
    return rules


def grants_of_rules(rules: Iterable[dict[str, Any]]) -> set[Grant]:
    grants: set[Grant] = set()
    for rule in rules:
        verbs = rule.get("verbs") or []
        for url in rule.get("nonResourceURLs") or []:
            grants.update(Grant("", "", verb, url=url) for verb in verbs)
        names = rule.get("resourceNames") or [""]
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                grants.update(
                    Grant(group, resource, verb, name) for verb in verbs for name in names
                )
    return grants


def is_cluster_scoped(grant: Grant) -> bool:
    return grant.resource.split("/")[0] in CLUSTER_SCOPED


# A row of `kubectl auth can-i --list`: RESOURCE [URLS] [NAMES] [VERBS]; RESOURCE is empty for
# non-resource URLs and reads `resource[.group][/subresource]`.
_CAN_I_ROW = re.compile(
    r"^(?P<resource>\S+)?\s*\[(?P<urls>[^\]]*)\]\s+\[(?P<names>[^\]]*)\]\s+\[(?P<verbs>[^\]]*)\]$"
)


def parse_can_i_list(text: str) -> set[Grant]:
    """Read the table `kubectl auth can-i --list` prints (header line first) into grants."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].split()[:1] == ["Resources"]:
        raise ValueError(f"not a `kubectl auth can-i --list` table:\n{text}")
    grants: set[Grant] = set()
    for line in lines[1:]:
        match = _CAN_I_ROW.match(line)
        if match is None:
            raise ValueError(f"unexpected `kubectl auth can-i --list` row: {line!r}")
        verbs = match["verbs"].split()
        urls = match["urls"].split()
        names = match["names"].split() or [""]
        if match["resource"] is None:
            grants.update(Grant("", "", verb, url=url) for verb in verbs for url in urls)
            continue
        resource_group, _, subresource = match["resource"].partition("/")
        resource, _, group = resource_group.partition(".")
        if subresource:
            resource = f"{resource}/{subresource}"
        grants.update(Grant(group, resource, verb, name) for verb in verbs for name in names)
    return grants


def describe(grants: Iterable[Grant]) -> list[str]:
    """Readable, sorted grants for assertion messages."""
    out = []
    for grant in sorted(grants):
        if grant.url:
            out.append(f"{grant.verb} {grant.url}")
            continue
        target = f"{grant.resource}.{grant.group}" if grant.group else grant.resource
        named = f" ({grant.resource_name})" if grant.resource_name else ""
        out.append(f"{grant.verb} {target}{named}")
    return out
