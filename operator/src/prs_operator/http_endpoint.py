"""The operator's HTTP server: progress reports from runner pods, /metrics and /healthz."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from prs_operator.metrics import Metrics
from prs_operator.progress import ProgressBook, Report, ReportRejected, verify_report

MAX_REPORT_BYTES = 64 * 1024
logger = logging.getLogger(__name__)


def build_app(
    keys: Callable[[], tuple[bytes, ...]], book: ProgressBook, metrics: Metrics,
    on_report: Callable[[Report], None], healthy: Callable[[], bool],
    ready: Callable[[], bool] = lambda: True,
) -> web.Application:
    async def progress(request: web.Request) -> web.Response:
        try:
            if (request.content_length or 0) > MAX_REPORT_BYTES:
                raise ReportRejected("report too large")
            payload = json.loads(await request.read())
            report = verify_report(keys(), payload, request.headers.get("Authorization", ""))
        except (ReportRejected, ValueError) as error:
            metrics.reports.labels("rejected").inc()
            logger.warning("progress report rejected: %s", error)  # never logs the token
            return web.json_response({"error": str(error)}, status=401)
        metrics.reports.labels("accepted").inc()
        book.record(report)
        on_report(report)
        return web.json_response({"accepted": True})

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        ok = healthy()
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    async def readiness(_: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    app = web.Application(client_max_size=MAX_REPORT_BYTES)
    app.add_routes([web.post("/v1/progress", progress), web.get("/metrics", scrape),
                    web.get("/healthz", health), web.get("/readyz", readiness)])
    return app


async def start_server(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
