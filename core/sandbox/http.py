"""The sandbox's HTTP face: Replicate's ``/v1`` API, public downloads, and ``/_sandbox``.

Routes are thin: they parse the request, call the engine, and render its documents
with this server's own address in place of the stored ``BASE`` marker. Handlers are
plain functions, so Starlette runs them in its thread pool; the fault and rate-limit
layer is async, so injected latency and hangs cost no thread.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.sandbox.engine import Page, Problem, Sandbox
from core.sandbox.faults import FaultBook, RateLimits, retry_after_header
from core.sandbox.store import BASE, dump

PROBLEM_JSON = "application/problem+json"
_ID_SEGMENT = re.compile(r"/(?:[a-z2-7]{26}|[0-9a-f]{64})(?=/|$)")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _render(
    request: Request, payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    text = dump(payload).replace(BASE, _base(request))
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def _problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(problem.body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _page(request: Request, page: Page) -> Response:
    next_url = None
    if page.next_cursor:
        next_url = f"{_base(request)}{request.url.path}?cursor={page.next_cursor}"
    return _render(request, {"next": next_url, "previous": None, "results": page.results})


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise Problem(400, "Bad request", "The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise Problem(400, "Bad request", "The request body must be a JSON object")
    return body


def _wait_seconds(prefer: str | None) -> float | None:
    """``Prefer: wait`` blocks up to 60 s; ``wait=N`` up to N (1..60)."""
    if not prefer:
        return None
    match = re.search(r"\bwait(?:=(\d+))?", prefer)
    if not match:
        return None
    return float(min(60, max(1, int(match.group(1) or 60))))


def build_app(sandbox: Sandbox, faults: FaultBook, limits: RateLimits) -> ASGIApp:
    """The ASGI application for one sandbox."""

    def model_key(request: Request) -> str:
        return f"{request.path_params['owner']}/{request.path_params['name']}"

    # -- /v1: Replicate's API ------------------------------------------------------
    def get_model(request: Request) -> Response:
        return _render(request, sandbox.get_model(model_key(request)))

    def delete_model(request: Request) -> Response:
        sandbox.delete_model(model_key(request))
        return Response(status_code=204)

    async def create_model(request: Request) -> Response:
        body = await _json_body(request)
        return _render(request, await _threaded(sandbox.create_model, body), 201)

    def list_versions(request: Request) -> Response:
        return _page(
            request, sandbox.list_versions(model_key(request), request.query_params.get("cursor"))
        )

    def get_version(request: Request) -> Response:
        return _render(
            request, sandbox.get_version(model_key(request), request.path_params["version"])
        )

    def delete_version(request: Request) -> Response:
        sandbox.delete_version(model_key(request), request.path_params["version"])
        return Response(status_code=202)

    async def create_training(request: Request) -> Response:
        body = await _json_body(request)
        doc = await _threaded(
            sandbox.create_training, model_key(request), request.path_params["version"], body
        )
        return _render(request, doc, 201)

    def list_trainings(request: Request) -> Response:
        return _page(request, sandbox.list_trainings(request.query_params.get("cursor")))

    def get_training(request: Request) -> Response:
        return _render(request, sandbox.get_training(request.path_params["id"]))

    def cancel_training(request: Request) -> Response:
        return _render(request, sandbox.cancel_training(request.path_params["id"]))

    async def create_prediction(request: Request) -> Response:
        body = await _json_body(request)
        wait = _wait_seconds(request.headers.get("prefer"))
        doc, finished = await _threaded(sandbox.create_prediction, body, wait)
        headers = {"Preference-Applied": "wait"} if wait and finished else None
        return _render(request, doc, 201, headers)

    def list_predictions(request: Request) -> Response:
        return _page(request, sandbox.list_predictions(request.query_params.get("cursor")))

    def get_prediction(request: Request) -> Response:
        return _render(request, sandbox.get_prediction(request.path_params["id"]))

    def cancel_prediction(request: Request) -> Response:
        return _render(request, sandbox.cancel_prediction(request.path_params["id"]))

    async def create_file(request: Request) -> Response:
        async with request.form(max_part_size=110 * 1024 * 1024) as form:
            upload = form.get("content")
            if upload is None or isinstance(upload, str):
                raise Problem(
                    422, "Input validation failed", "- content: a file part is required\n"
                )
            content = await upload.read()
            name = upload.filename or "file"
            content_type = upload.content_type or "application/octet-stream"
            raw_metadata = form.get("metadata")
        try:
            metadata = json.loads(raw_metadata) if isinstance(raw_metadata, str) else {}
        except ValueError as exc:
            raise Problem(422, "Input validation failed", "- metadata: not JSON\n") from exc
        doc = await _threaded(sandbox.create_file, name, content_type, content, metadata)
        return _render(request, doc, 201)

    def list_files(request: Request) -> Response:
        return _render(
            request, {"next": None, "previous": None, "results": sandbox.store.list_files()}
        )

    def get_file(request: Request) -> Response:
        return _render(request, sandbox.get_file(request.path_params["id"]))

    def delete_file(request: Request) -> Response:
        sandbox.delete_file(request.path_params["id"])
        return Response(status_code=204)

    def download_file(request: Request) -> Response:
        content, content_type = sandbox.file_content(request.path_params["id"])
        return Response(content, media_type=content_type)

    def account(request: Request) -> Response:
        name = sandbox.config.account
        return _render(
            request, {"type": "organization", "username": name, "name": name, "github_url": None}
        )

    # -- public downloads: replicate.delivery and the app's blob store ------------------
    def delivery(request: Request) -> Response:
        name = request.path_params["name"]
        content = sandbox.get_delivery(request.path_params["token"], name)
        return Response(content, media_type=_media_type(name))

    async def put_blob(request: Request) -> Response:
        content = await request.body()
        path = await _threaded(
            sandbox.put_blob,
            request.path_params["path"],
            content,
            request.headers.get("content-type", "application/octet-stream"),
        )
        return _render(request, {"url": f"{BASE}{path}", "size": len(content)}, 201)

    def get_blob(request: Request) -> Response:
        content, content_type = sandbox.get_blob(request.path_params["path"])
        return Response(content, media_type=content_type)

    # -- /_sandbox: the control API ------------------------------------------------------
    def health(request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "sandbox": True,
                "data_dir": str(sandbox.data_dir),
                "account": sandbox.config.account,
            }
        )

    async def config(request: Request) -> Response:
        if request.method == "POST":
            sandbox.config.update(await _json_body(request))
        return JSONResponse(sandbox.config.as_dict())

    async def fault_rules(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            if "seed" in body:
                faults.seed(int(body.pop("seed")))
            rule = faults.add(body)
            return JSONResponse(rule.public(), status_code=201)
        if request.method == "DELETE":
            faults.clear()
        return JSONResponse({"rules": faults.rules()})

    async def rate_limits(request: Request) -> Response:
        if request.method == "POST":
            limits.configure(await _json_body(request))
        return JSONResponse(limits.public())

    async def next_training(request: Request) -> Response:
        body = await _json_body(request)
        sandbox.plan_next_training(str(body.get("outcome")), body.get("error"))
        return JSONResponse({"planned": body.get("outcome")}, status_code=201)

    def finish_trainings(request: Request) -> Response:
        return JSONResponse({"finished": sandbox.finish_trainings_now()})

    def reset(request: Request) -> Response:
        sandbox.reset()
        faults.clear()
        limits.configure({"predictions_per_minute": None, "other_per_minute": None})
        return JSONResponse({"reset": True})

    def stats(request: Request) -> Response:
        with sandbox._stats_lock:
            counts = dict(sandbox.stats)
        return JSONResponse({"counts": counts, "faults": faults.rules()})

    routes = [
        Route("/v1/models", create_model, methods=["POST"]),
        Route("/v1/models/{owner}/{name}", get_model, methods=["GET"]),
        Route("/v1/models/{owner}/{name}", delete_model, methods=["DELETE"]),
        Route("/v1/models/{owner}/{name}/versions", list_versions, methods=["GET"]),
        Route("/v1/models/{owner}/{name}/versions/{version}", get_version, methods=["GET"]),
        Route("/v1/models/{owner}/{name}/versions/{version}", delete_version, methods=["DELETE"]),
        Route(
            "/v1/models/{owner}/{name}/versions/{version}/trainings",
            create_training,
            methods=["POST"],
        ),
        Route("/v1/trainings", list_trainings, methods=["GET"]),
        Route("/v1/trainings/{id}", get_training, methods=["GET"]),
        Route("/v1/trainings/{id}/cancel", cancel_training, methods=["POST"]),
        Route("/v1/predictions", create_prediction, methods=["POST"]),
        Route("/v1/predictions", list_predictions, methods=["GET"]),
        Route("/v1/predictions/{id}", get_prediction, methods=["GET"]),
        Route("/v1/predictions/{id}/cancel", cancel_prediction, methods=["POST"]),
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{id}", get_file, methods=["GET"]),
        Route("/v1/files/{id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{id}/download", download_file, methods=["GET"]),
        Route("/v1/account", account, methods=["GET"]),
        Route("/delivery/{token}/{name}", delivery, methods=["GET"]),
        Route("/_blob/{path:path}", put_blob, methods=["PUT"]),
        Route("/_blob/{path:path}", get_blob, methods=["GET"]),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/config", config, methods=["GET", "POST"]),
        Route("/_sandbox/faults", fault_rules, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/rate-limits", rate_limits, methods=["GET", "POST"]),
        Route("/_sandbox/trainings/next", next_training, methods=["POST"]),
        Route("/_sandbox/trainings/finish", finish_trainings, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
    ]

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return _problem_response(exc)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _problem_response(Problem(404, "Not found", "Not found."))

    app = Starlette(
        routes=routes,
        exception_handlers={Problem: on_problem, 404: on_not_found, 405: on_not_found},
    )
    return Gatekeeper(app, sandbox, faults, limits)


async def _threaded(function: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def _media_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower()
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
        "tar": "application/x-tar",
        "zip": "application/zip",
    }.get(suffix, "application/octet-stream")


class Gatekeeper:
    """Authentication, rate limits and injected faults, in front of the routes."""

    def __init__(
        self, app: ASGIApp, sandbox: Sandbox, faults: FaultBook, limits: RateLimits
    ) -> None:
        self.app, self.sandbox, self.faults, self.limits = app, sandbox, faults, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        self.sandbox.count(f"{method} {_ID_SEGMENT.sub('/{id}', path)}")
        latency, rule = self.faults.pick(method, path)
        if latency:
            await asyncio.sleep(latency)
        if path.startswith("/v1/"):
            headers = dict(scope.get("headers") or [])
            token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ").strip()
            if not token:
                await _problem_response(
                    Problem(
                        401,
                        "Unauthenticated",
                        "You did not pass a valid authentication token",
                    )
                )(scope, receive, send)
                return
            wait = self.limits.take(method == "POST" and path == "/v1/predictions")
            if wait is not None:
                await _throttled(wait)(scope, receive, send)
                return
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.timeout:
            await asyncio.sleep(rule.hang_seconds)
        if rule.when == "after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
        await _fault_response(rule.status or 504, rule.retry_after)(scope, receive, send)


def _throttled(wait: float) -> Response:
    seconds = retry_after_header(wait)
    return Response(
        json.dumps(
            {
                "title": "Request was throttled",
                "status": 429,
                "detail": f"Request was throttled. Your rate limit resets in ~{seconds}s.",
            }
        ),
        status_code=429,
        media_type=PROBLEM_JSON,
        headers={"Retry-After": seconds},
    )


def _fault_response(status: int, retry_after: float | None) -> Response:
    headers = {"Retry-After": retry_after_header(retry_after)} if retry_after else None
    if status == 429:
        response = _throttled(retry_after or 1)
        return response
    if status == 502:
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            status_code=502,
            media_type="text/html",
            headers=headers,
        )
    titles = {500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
    title = titles.get(status, "Error")
    return Response(
        json.dumps(
            {"title": title, "detail": f"{title} (injected by the sandbox)", "status": status}
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )
