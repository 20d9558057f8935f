"""Metric names read from PromQL expressions, and the series names the operator exports.

Enough of PromQL for the chart's own queries: strings, label matchers, range and subquery
brackets, `by (...)`-style label lists, `offset` durations and function calls are dropped;
what is left that looks like a name is a metric. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
BRACKETS = re.compile(r"\[[^\[\]]*\]")
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "inf", "nan"}
# `up` is no metric of the operator: Prometheus records it for every target it scrapes.
PROMETHEUS_SERIES = frozenset({"up"})


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (Grafana's `label_values(METRIC, label)` too)."""
    text = STRING.sub(" ", expression)
    text = MATCHERS.sub(" ", text)
    text = BRACKETS.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = OFFSET.sub(" ", text)
    text = re.sub(r",\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", ")", text)  # label_values(m, LABEL)
    return {name for name in NAME.findall(text) if name.lower() not in KEYWORDS}


def exported_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of REGISTRY can hold, labelled children not yet created
    included (a counter `x` is `x_total`, a histogram `x` is `x_bucket`, `x_count`, ...)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "untyped": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "info": ("_info",)}
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def unknown_metrics(expressions: Iterable[str], known: set[str]) -> dict[str, set[str]]:
    """Expression -> the metric names in it that are neither KNOWN nor Prometheus' own."""
    found = {expr: metric_names(expr) - known - PROMETHEUS_SERIES for expr in expressions}
    return {expr: names for expr, names in found.items() if names}
