"""Prometheus metrics, names with the `parallelrunstep_` prefix and base units."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.steps = Gauge("parallelrunstep_steps", "Steps seen by this operator, by phase.",
                           ["phase"], registry=self.registry)
        self.mini_batches = Counter(
            "parallelrunstep_mini_batches_total",
            "Mini-batches of finished steps, by result (succeeded, failed).",
            ["result"], registry=self.registry)
        self.items = Counter(
            "parallelrunstep_items_total",
            "Items (files or records) of finished steps, by result (succeeded, failed).",
            ["result"], registry=self.registry)
        self.finished = Counter(
            "parallelrunstep_steps_finished_total", "Steps that finished, by phase.",
            ["phase"], registry=self.registry)
        self.reconcile = Histogram(
            "parallelrunstep_reconcile_duration_seconds", "Time of one reconcile pass.",
            registry=self.registry)
        self.reconcile_errors = Counter(
            "parallelrunstep_reconcile_errors_total",
            "Reconcile passes that ended with an error (retried by the next event or resync).",
            registry=self.registry)
        self.status_writes = Counter(
            "parallelrunstep_status_writes_total", "Status writes to steps.",
            registry=self.registry)
        self.to_running = Histogram(
            "parallelrunstep_creation_to_running_seconds",
            "Time from a step's creation until its Indexed Job was created.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300), registry=self.registry)
        self.reports = Counter(
            "parallelrunstep_progress_reports_total",
            "Progress reports received from runner pods, by result (accepted, rejected).",
            ["result"], registry=self.registry)
        self.phases: dict[tuple[str, str], str] = {}
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds, python_info
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe_phase(self, key: tuple[str, str], phase: str | None) -> None:
        old = self.phases.pop(key, None)
        if old is not None:
            self.steps.labels(old).dec()
        if phase is not None:
            self.phases[key] = phase
            self.steps.labels(phase).inc()

    def observe_finish(self, status: Mapping[str, Any]) -> None:
        self.finished.labels(status.get("phase", "Unknown")).inc()
        for result in ("succeeded", "failed"):
            self.mini_batches.labels(result).inc((status.get("miniBatches") or {}).get(result, 0))
            self.items.labels(result).inc((status.get("items") or {}).get(result, 0))
