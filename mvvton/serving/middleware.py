"""Pure-ASGI middleware of the service: request ids and access log, the streaming upload limit, the API key.

Each one answers its own errors in the service's JSON shape `{"error", "message", "request_id"}`.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mvvton.serving.errors import error_body

logger = logging.getLogger("mvvton.serving")
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("mvvton_request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (the current request's id, or "-") so formats can use `%(request_id)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines `time level [request id] message` on stderr for the service's loggers."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    for name in ("mvvton.serving", "rq.worker"):
        named = logging.getLogger(name)
        named.handlers[:] = [handler]
        named.setLevel(level)
        named.propagate = False


async def send_error(send: Send, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Send a complete JSON error response (for middleware that answers before the app)."""
    body = json.dumps(error_body(error, message, request_id_var.get())).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Gives each request an id (the client's valid `X-Request-ID` or a new one), returns it in the response
    header, logs one access line, counts requests, and turns an unhandled exception into a JSON 500."""

    def __init__(self, app: ASGIApp, on_response: Callable[[str, int], None] | None = None) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = client_id if _CLIENT_REQUEST_ID.match(client_id) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False
        begin = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                await send_error(send_with_id, 500, "InternalError",
                                 f"an unexpected server error; the server log has the details under request id "
                                 f"{request_id}")  # fmt: skip
        finally:
            elapsed = (time.perf_counter() - begin) * 1000.0
            logger.info("%s %s -> %d (%.1f ms)", scope["method"], scope["path"], status, elapsed)
            if self.on_response is not None:
                self.on_response(scope["method"], status)
            request_id_var.reset(token)


class BodyLimitExceeded(HTTPException):
    """Raised from `receive()` when a streamed body passes the limit (an HTTPException, so FastAPI's body
    parsing lets it through to the exception handler, which answers 413 in the service's shape)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large_message(limit))


def _too_large_message(limit: int) -> str:
    return f"the request body is larger than the upload limit of {limit / 1024**2:.1f} MiB; send smaller photos"


class UploadLimitMiddleware:
    """Limits request bodies to `max_bytes`: a larger `Content-Length` is refused before anything is read, and a
    body without one (chunked) is counted while it streams; the chunk that would pass the limit is never handed
    to the app, so nothing beyond the limit is parsed or written to disk.

    Starlette's own `RequestBodyLimitMiddleware` answers in text/plain, not in the service's error shape.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_bytes: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_bytes = on_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await send_error(send, 400, "BadRequest", "Content-Length is not an integer")
                return
            if too_large:
                await send_error(send, 413, "UploadTooLargeError", _too_large_message(self.max_bytes),
                                 {"connection": "close"})  # fmt: skip
                return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                if received + chunk > self.max_bytes:
                    raise BodyLimitExceeded(self.max_bytes)
                received += chunk
                if self.on_bytes is not None:
                    self.on_bytes(chunk)
            return message

        await self.app(scope, receive_counted, send)


class ApiKeyMiddleware:
    """Requires `Authorization: Bearer <key>` or `X-API-Key: <key>` on paths under `protected_prefix`."""

    def __init__(self, app: ASGIApp, api_key: str, protected_prefix: str = "/v1/") -> None:
        self.app = app
        self.api_key = api_key.encode()
        self.protected_prefix = protected_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.protected_prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key", b"")
        authorization = headers.get(b"authorization", b"")
        if authorization.lower().startswith(b"bearer "):
            given = authorization[7:].strip()
        if not hmac.compare_digest(given, self.api_key):
            await send_error(send, 401, "UnauthorizedError",
                             "missing or wrong API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                             {"www-authenticate": "Bearer"})  # fmt: skip
            return
        await self.app(scope, receive, send)
