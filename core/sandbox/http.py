"""The sandbox's HTTP face: Replicate's ``/v1`` API, public downloads, and ``/_sandbox``.

Routes are thin: they parse the request, call the engine, pass its documents through
the shape rules (``core.sandbox.shapes``) and render them with this server's own address
in place of the stored ``BASE`` marker. Handlers are plain functions, so Starlette runs
them in its thread pool; the fault and rate-limit layer is async, so injected latency and
hangs cost no thread.

Why one long module: a test double of Replicate's HTTP surface (every route the client uses,
plus the control API), not the domain; one file keeps the API it imitates readable side by
side.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.redaction import REDACTED
from core.sandbox.engine import Page, Problem, Sandbox
from core.sandbox.faults import (
    FaultBook,
    FaultRule,
    RateLimits,
    retry_after_header,
    retry_after_value,
    throttled_detail,
)
from core.sandbox.request_versions import names_version_in_body, version_about
from core.sandbox.shapes import ShapeBook
from core.sandbox.store import BASE, Doc, dump

PROBLEM_JSON = "application/problem+json"
# Ids in stats keys: jobs (26 characters, either alphabet), files (48), versions (64 hex).
_ID_SEGMENT = re.compile(r"/(?:[a-z0-9]{26}|[A-Za-z0-9_-]{48}|[0-9a-f]{64})(?=/|$)")


def _redacted_login(authorization: str) -> bool:
    """Whether a Basic ``authorization`` header logs in with a redacted userinfo."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        login = base64.b64decode(encoded).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return False
    return REDACTED in unquote(login)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _render(
    request: Request, payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if isinstance(payload, dict) and "id" in payload:  # Replicate's answers start with it
        payload = {"id": payload["id"], **payload}
        text = json.dumps(payload, separators=(",", ":")).replace(BASE, _base(request))
    else:
        text = dump(payload).replace(BASE, _base(request))
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def _problem_response(
    problem: Problem, shapes: ShapeBook, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(shapes.error(problem.body)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _page(request: Request, page: Page, shape: Callable[[Doc], Doc]) -> Response:
    next_url = None
    if page.next_cursor:
        next_url = f"{_base(request)}{request.url.path}?cursor={page.next_cursor}"
    results = [shape(doc) for doc in page.results]
    return _render(request, {"next": next_url, "previous": None, "results": results})


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


def _wait_applied(prefer: str | None) -> str:
    """What ``Preference-Applied`` echoes: ``wait=N`` for ``wait=N``, else ``wait``."""
    match = re.search(r"\bwait(=\d+)?", prefer or "")
    return f"wait{match.group(1) or ''}" if match else "wait"


def build_app(
    sandbox: Sandbox, faults: FaultBook, limits: RateLimits, shapes: ShapeBook | None = None
) -> ASGIApp:
    """The ASGI application for one sandbox."""
    shapes = shapes or ShapeBook()

    def model_key(request: Request) -> str:
        return f"{request.path_params['owner']}/{request.path_params['name']}"

    def prediction_shape(doc: Doc) -> Doc:
        return shapes.prediction(doc, sandbox.clock())

    # -- /v1: Replicate's API ------------------------------------------------------
    def get_model(request: Request) -> Response:
        return _render(request, shapes.model(sandbox.get_model(model_key(request))))

    def delete_model(request: Request) -> Response:
        sandbox.delete_model(model_key(request))
        return Response(status_code=204)

    async def create_model(request: Request) -> Response:
        body = await _json_body(request)
        return _render(request, shapes.model(await _threaded(sandbox.create_model, body)), 201)

    def list_versions(request: Request) -> Response:
        key = model_key(request)
        return _page(
            request,
            sandbox.list_versions(key, request.query_params.get("cursor")),
            lambda doc: shapes.version(key, doc),
        )

    def get_version(request: Request) -> Response:
        key = model_key(request)
        return _render(
            request, shapes.version(key, sandbox.get_version(key, request.path_params["version"]))
        )

    def delete_version(request: Request) -> Response:
        sandbox.delete_version(model_key(request), request.path_params["version"])
        return Response(status_code=202)

    async def create_training(request: Request) -> Response:
        body = await _json_body(request)
        doc = await _threaded(
            sandbox.create_training, model_key(request), request.path_params["version"], body
        )
        return _render(request, shapes.training(doc), 201)

    def list_trainings(request: Request) -> Response:
        return _page(
            request, sandbox.list_trainings(request.query_params.get("cursor")), shapes.training
        )

    def get_training(request: Request) -> Response:
        return _render(request, shapes.training(sandbox.get_training(request.path_params["id"])))

    def cancel_training(request: Request) -> Response:
        return _render(request, shapes.training(sandbox.cancel_training(request.path_params["id"])))

    async def create_prediction(request: Request) -> Response:
        body = await _json_body(request)
        prefer = request.headers.get("prefer")
        wait = _wait_seconds(prefer)
        doc, _finished = await _threaded(sandbox.create_prediction, body, wait)
        if wait:  # Replicate echoes the wait it applied, finished or not
            doc = shapes.waited_prediction(doc)
        headers = {"Preference-Applied": _wait_applied(prefer)} if wait else None
        return _render(request, prediction_shape(doc), 201, headers)

    def list_predictions(request: Request) -> Response:
        return _page(
            request, sandbox.list_predictions(request.query_params.get("cursor")), prediction_shape
        )

    def get_prediction(request: Request) -> Response:
        return _render(request, prediction_shape(sandbox.get_prediction(request.path_params["id"])))

    def cancel_prediction(request: Request) -> Response:
        return _render(
            request, prediction_shape(sandbox.cancel_prediction(request.path_params["id"]))
        )

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
        return _render(request, shapes.file(doc), 201)

    def list_files(request: Request) -> Response:
        files = [shapes.file(doc) for doc in sandbox.store.list_files()]
        return _render(request, {"next": None, "previous": None, "results": files})

    def get_file(request: Request) -> Response:
        return _render(request, shapes.file(sandbox.get_file(request.path_params["id"])))

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
        name, token = request.path_params["name"], request.path_params["token"]
        prediction = sandbox.store.get_job("prediction", token)
        if prediction is not None and shapes.removed(prediction[0], sandbox.clock()):
            raise Problem(404, "Not found", "Not found.")  # the data was removed
        content = sandbox.get_delivery(token, name)
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
        # A signature or password the console stored without its secret ("[redacted]") is
        # refused, as S3 or Blob would refuse a wrong one: only the full URL downloads.
        given = [*request.query_params.values(), request.headers.get("authorization", "")]
        if any(REDACTED in unquote(value) or _redacted_login(value) for value in given):
            raise Problem(403, "Forbidden", "The request signature does not match.")
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

    async def shape_rules(request: Request) -> Response:
        if request.method == "POST":
            rule = shapes.add(await _json_body(request))
            return JSONResponse(rule.public(), status_code=201)
        if request.method == "DELETE":
            shapes.clear()
        return JSONResponse({"rules": shapes.rules()})

    async def rate_limits(request: Request) -> Response:
        if request.method == "POST":
            limits.configure(await _json_body(request))
        return JSONResponse(limits.public())

    async def next_training(request: Request) -> Response:
        body = await _json_body(request)
        sandbox.plan_next_training(
            str(body.get("outcome")), body.get("error"), body.get("destination")
        )
        return JSONResponse({"planned": body.get("outcome")}, status_code=201)

    def finish_trainings(request: Request) -> Response:
        return JSONResponse({"finished": sandbox.finish_trainings_now()})

    async def version_schema(request: Request) -> Response:
        version_id = request.path_params["version"]
        if request.method == "GET":
            return JSONResponse(await _threaded(sandbox.input_schema, version_id))
        names = _inputs_to_drop(await _json_body(request))
        return JSONResponse(await _threaded(sandbox.drop_inputs, version_id, names))

    def clear_rules() -> None:
        faults.clear()
        shapes.clear()
        limits.configure(
            {
                "predictions_per_minute": None,
                "other_per_minute": None,
                "wording": "resets",
                "retry_after_as": "seconds",
            }
        )

    def reset(request: Request) -> Response:
        sandbox.reset()
        clear_rules()
        return JSONResponse({"reset": True})

    async def save_snapshot(request: Request) -> Response:
        name = _snapshot_name((await _json_body(request)).get("name"))
        await _threaded(sandbox.save_snapshot, name)
        return JSONResponse({"snapshot": name}, status_code=201)

    async def restore_snapshot(request: Request) -> Response:
        name = _snapshot_name(request.path_params["name"])
        try:
            await _threaded(sandbox.restore_snapshot, name)
        except KeyError as exc:
            raise Problem(404, "Not found", f"No snapshot named {name!r}.") from exc
        clear_rules()
        return JSONResponse({"restored": name})

    def stats(request: Request) -> Response:
        with sandbox._stats_lock:
            counts = dict(sandbox.stats)
        return JSONResponse({"counts": counts, "faults": faults.rules(), "shapes": shapes.rules()})

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
        Route("/_sandbox/shapes", shape_rules, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/rate-limits", rate_limits, methods=["GET", "POST"]),
        Route("/_sandbox/trainings/next", next_training, methods=["POST"]),
        Route("/_sandbox/trainings/finish", finish_trainings, methods=["POST"]),
        Route("/_sandbox/versions/{version}/schema", version_schema, methods=["GET", "POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/snapshots", save_snapshot, methods=["POST"]),
        Route("/_sandbox/snapshots/{name}/restore", restore_snapshot, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
    ]

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if request.url.path.startswith("/_sandbox/"):  # the control API is never shaped
            return Response(json.dumps(exc.body), exc.status, media_type=PROBLEM_JSON)
        return _problem_response(exc, shapes)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _problem_response(Problem(404, "Not found", "Not found."), shapes)

    app = Starlette(
        routes=routes,
        exception_handlers={Problem: on_problem, 404: on_not_found, 405: on_not_found},
    )
    return Gatekeeper(app, sandbox, faults, limits, shapes)


def _inputs_to_drop(body: dict[str, Any]) -> list[str]:
    """The input names of a ``{"drop_inputs": [...]}`` schema change."""
    unknown = set(body) - {"drop_inputs"}
    if unknown:
        raise Problem(400, "Bad schema change", f"unknown fields: {', '.join(sorted(unknown))}")
    names = body.get("drop_inputs")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name for name in names)
    ):
        raise Problem(400, "Bad schema change", "drop_inputs must be a list of input names")
    return names


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


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _hostname(host: str) -> str:
    """``127.0.0.1:8787`` -> ``127.0.0.1``; ``[::1]:8787`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def control_refusal(scope: Scope) -> str | None:
    """Why a control-API request is refused (it can reset the sandbox, inject faults): it
    came from another machine, or a web page of another origin sent it (a browser adds
    ``Origin`` to such requests, even "simple" ones that skip the CORS preflight)."""
    client = scope.get("client")
    if client and client[0] not in _LOOPBACK:
        return "The sandbox's control API answers loopback clients only."
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode(errors="replace").strip()
    if host and _hostname(host) not in _LOOPBACK:
        # A page of another site whose name was rebound to 127.0.0.1 sends its own name.
        return f"The sandbox's control API answers requests to a loopback name only ({host})."
    origin = headers.get(b"origin", b"").decode(errors="replace").strip()
    if origin and origin.split("://", 1)[-1].rstrip("/") != host:
        return f"The sandbox's control API refuses cross-origin requests (from {origin})."
    return None


class Gatekeeper:
    """Authentication, rate limits and injected faults, in front of the routes."""

    def __init__(
        self,
        app: ASGIApp,
        sandbox: Sandbox,
        faults: FaultBook,
        limits: RateLimits,
        shapes: ShapeBook,
    ) -> None:
        self.app, self.sandbox, self.faults, self.limits = app, sandbox, faults, limits
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/_sandbox/"):
            refused = control_refusal(scope)
            if refused is not None:
                body = {"title": "Forbidden", "detail": refused, "status": 403}
                await Response(json.dumps(body), 403, media_type=PROBLEM_JSON)(scope, receive, send)
                return
        if scope["type"] != "http" or path.startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        self.sandbox.count(f"{method} {_ID_SEGMENT.sub('/{id}', path)}")
        version = None
        if self.faults.asks_version(method, path):
            request_body = b""
            if names_version_in_body(method, path):
                request_body, receive = await _buffered(receive)
            version = await _threaded(version_about, self.sandbox.store, method, path, request_body)
        latency, rule = self.faults.pick(method, path, version)
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
                    ),
                    self.shapes,
                )(scope, receive, send)
                return
            wait, limit_headers = self.limits.take(method == "POST" and path == "/v1/predictions")
            if wait is not None:
                throttled = _throttled(
                    wait, self.limits.wording, self.limits.retry_after_as, self.shapes
                )
                await throttled(scope, receive, send)  # its own ratelimit-* headers
                return
            send = _adding_headers(send, limit_headers)
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.holds_answer:
            await self.app(scope, receive, _held(send, rule.latency_ms / 1000))
            return
        if rule.timeout:
            await asyncio.sleep(rule.hang_seconds)
        if rule.when == "truncated":
            await self.app(scope, receive, _truncating(send))
            return
        if rule.when == "after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
        await _fault_response(rule, self.shapes)(scope, receive, send)


_SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _snapshot_name(raw: object) -> str:
    if not isinstance(raw, str) or not _SNAPSHOT_NAME.fullmatch(raw):
        raise Problem(400, "Bad snapshot", "name: 1-64 letters, digits, '-' or '_'")
    return raw


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a ``receive`` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing more comes
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def _held(send: Send, seconds: float) -> Send:
    """``send`` that holds the answer back ``seconds`` once the request was carried out."""
    started = False

    async def hold(message: Message) -> None:
        nonlocal started
        if not started and message["type"] == "http.response.start":
            started = True
            await asyncio.sleep(seconds)
        await send(message)

    return hold


def _truncating(send: Send) -> Send:
    """``send`` that holds the answer back and sends it with only the first half of its
    body (and a Content-Length that says so)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def send_half(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        half = body[: len(body) // 2]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(half)).encode())]})
        await send({"type": "http.response.body", "body": half})

    return send_half


def _adding_headers(send: Send, extra: dict[str, str]) -> Send:
    """``send`` with ``extra`` headers added to the response's start."""
    if not extra:
        return send
    encoded = [(key.encode(), value.encode()) for key, value in extra.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *encoded]}
        await send(message)

    return send_with_headers


def _throttled(wait: float, wording: str, retry_after_as: str, shapes: ShapeBook) -> Response:
    """A 429 as Replicate sends it: only ``detail``, in either wording."""
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": retry_after_header(wait)}
    retry_after = retry_after_value(wait, retry_after_as, time.time())
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Response(
        json.dumps(shapes.error({"detail": throttled_detail(wait, wording)})),
        status_code=429,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _fault_response(rule: FaultRule, shapes: ShapeBook) -> Response:
    status, retry_after = rule.status or 504, rule.retry_after
    if rule.redirect_to is not None:
        return Response(status_code=status, headers={"Location": rule.redirect_to})
    if status == 429:
        return _throttled(retry_after or 1, rule.wording, rule.retry_after_as, shapes)
    headers = {}
    if retry_after:
        value = retry_after_value(retry_after, rule.retry_after_as, time.time())
        if value is not None:
            headers["Retry-After"] = value
    if status == 502:
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            status_code=502,
            media_type="text/html",
            headers=headers,
        )
    titles = {500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
    title = titles.get(status, "Error")
    body = rule.body or {
        "title": title,
        "detail": f"{title} (injected by the sandbox)",
        "status": status,
    }
    return Response(
        json.dumps(shapes.error(body)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )
