"""The HTTP routes of the try-on service and `create_app`, which wires store, workers, metrics and middleware.

    POST   /v1/jobs                           submit (multipart) -> 202 {id, status_url, ...}
    GET    /v1/jobs                           recent jobs (?limit=20&status=done)
    GET    /v1/jobs/{id}                      status: queued (position) / running (step i/N) / done / failed / cancelled
    GET    /v1/jobs/{id}/result               the result PNG
    GET    /v1/jobs/{id}/intermediates        routing decision + links to the debug images (masks, pre-warp, ...)
    GET    /v1/jobs/{id}/intermediates/{name} one debug image (PNG)
    DELETE /v1/jobs/{id}                      cancel a queued or running job
    POST   /v1/try-on                         submit and wait (timeout; a client that disconnects cancels its job)
    GET    /health, GET /metrics              liveness; Prometheus text format

Endpoints never run model work on the event loop: the embedded worker threads (or `mvvton worker` processes over
Redis) do. Every error is `{"error", "message", "request_id"}` with the request id also in `X-Request-ID`.
"""

# No `from __future__ import annotations`: FastAPI must see the real `UploadFile` types of the endpoints below.
import asyncio
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated

from mvvton.serving.jobs import (
    DEAD_WORKER_GRACE_SECONDS,
    DEFAULT_QUEUE_NAME,
    MAX_IMAGE_PIXELS,
    MAX_STEPS,
    JobParameters,
)
from mvvton.serving.store import DEFAULT_MAX_STORE_BYTES, DEFAULT_RETENTION_SECONDS, JobRecord

logger = logging.getLogger("mvvton.serving")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # the whole multipart request: up to three photos


def default_store_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mvvton" / "service"


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the service (`mvvton serve --help` lists the same ones as flags).

    Args:
        store_dir: job table + file store folder (default `~/.cache/mvvton/service`).
        queue_url: `redis://HOST:PORT/DB` to run jobs on `mvvton worker` processes; None = worker threads here.
        device: torch device of the embedded workers.
        workers: embedded worker threads (each loads its own pipeline).
        max_upload_bytes: request body limit (Content-Length checked first, then counted while streaming).
        max_image_pixels: per-photo decoded-pixel limit (checked from the image header).
        max_steps: largest `steps` a job may ask for.
        max_queued: jobs waiting beyond this are refused with 429 + Retry-After.
        retention_seconds, max_store_bytes: finished jobs are removed after this time / while the store is larger.
        try_on_timeout: seconds `POST /v1/try-on` waits before cancelling its job (504).
        api_key: if set, `/v1/*` requires it (`Authorization: Bearer` or `X-API-Key`); default `$MVVTON_API_KEY`.
        cors_origins: origins allowed by CORS (none by default).
        dead_worker_grace: with Redis, a started job whose worker heartbeat has been gone this many seconds is
            queued again (workers refresh it every few seconds; see `mvvton worker --heartbeat-seconds`).
    """

    store_dir: Path | None = None
    queue_url: str | None = None
    queue_name: str = DEFAULT_QUEUE_NAME
    device: str = "cpu"
    workers: int = 1
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_steps: int = MAX_STEPS
    max_queued: int = 32
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    max_store_bytes: int = DEFAULT_MAX_STORE_BYTES
    try_on_timeout: float = 600.0
    api_key: str | None = field(default_factory=lambda: os.environ.get("MVVTON_API_KEY") or None)
    cors_origins: tuple[str, ...] = ()
    dead_worker_grace: float = DEAD_WORKER_GRACE_SECONDS

    def check(self) -> "ServiceConfig":
        from mvvton.errors import InvalidArgumentError

        for name in ("workers", "max_upload_bytes", "max_image_pixels", "max_steps", "max_queued"):
            if int(getattr(self, name)) < 1:
                raise InvalidArgumentError(f"{name} must be >= 1, got {getattr(self, name)}")
        positive = ("try_on_timeout", "retention_seconds", "max_store_bytes", "dead_worker_grace")
        if not all(getattr(self, name) > 0 for name in positive):
            raise InvalidArgumentError(f"{', '.join(positive)} must be > 0")
        if self.queue_url is not None and not self.queue_url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidArgumentError(f"queue must be a redis:// URL, got {self.queue_url!r}")
        return self


def job_view(record: JobRecord) -> dict:
    """The JSON of `GET /v1/jobs/{id}`."""
    base = f"/v1/jobs/{record.id}"
    view = {
        "id": record.id,
        "status": record.status,
        "status_url": base,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "params": record.params,
        "cancel_requested": record.cancel_requested,
    }
    if record.status == "queued":
        view["position"] = record.position
    if record.status in ("running", "done"):
        view.update(step=record.step, total_steps=record.total_steps,
                    progress=f"{record.step}/{record.total_steps}")  # fmt: skip
    if record.status == "done":
        view.update(person_view=record.person_view, routed_garment=record.routed_garment, warnings=record.warnings,
                    result_url=f"{base}/result", intermediates_url=f"{base}/intermediates")  # fmt: skip
    if record.status == "failed":
        view["error"] = {"error": record.error, "message": record.message}
    return view


def create_app(model_dir: str | Path | None = None, *, config: ServiceConfig | None = None, **settings):
    """Build the FastAPI app of the try-on service.

    Args:
        model_dir: local pipeline folder for the embedded workers (default: the embedded default model). Unused
            with a Redis queue (the `mvvton worker` processes load the model).
        config: a `ServiceConfig`; `settings` override its fields by name (e.g. `max_steps=10`).
    Returns:
        The FastAPI app. Workers start and stop with the app's lifespan (uvicorn, `with TestClient(app)`).
    """
    try:
        from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the service needs FastAPI: pip install 'mvvton[serve]'") from error

    import mvvton
    from mvvton.errors import InvalidArgumentError, MVVTONError
    from mvvton.serving.errors import (
        SERVER_SIDE_JOB_ERRORS,
        JobNotFoundError,
        JobStateError,
        JobTimeoutError,
        QueueFullError,
        UnauthorizedError,
        error_body,
        status_code_for,
        status_error_name,
    )
    from mvvton.serving.jobs import TryOnRunner, check_photo
    from mvvton.serving.metrics import ServiceMetrics
    from mvvton.serving.middleware import (
        ApiKeyMiddleware,
        RequestContextMiddleware,
        UploadLimitMiddleware,
        request_id_var,
    )
    from mvvton.serving.store import JobStore
    from mvvton.serving.workers import JobEvents, LocalWorkerPool, RedisQueue

    known = {item.name for item in fields(ServiceConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InvalidArgumentError(f"unknown service setting(s) {unknown}; known: {sorted(known)}")
    config = replace(config or ServiceConfig(), **settings).check()
    store = JobStore(config.store_dir or default_store_dir(), retention_seconds=config.retention_seconds,
                     max_bytes=config.max_store_bytes)  # fmt: skip
    metrics = ServiceMetrics(store)
    events = JobEvents()
    if config.queue_url:
        dispatcher = RedisQueue(store, config.queue_url, metrics, events, queue_name=config.queue_name,
                                dead_worker_grace=config.dead_worker_grace)  # fmt: skip
    else:
        runners = [TryOnRunner.from_pretrained(model_dir, device=config.device, max_image_pixels=config.max_image_pixels)
                   for _ in range(config.workers)]  # fmt: skip
        dispatcher = LocalWorkerPool(store, runners, metrics, events)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(dispatcher.start)
        logger.info("service up: %s workers, store %s", dispatcher.mode, store.root)
        try:
            yield
        finally:
            await run_in_threadpool(dispatcher.stop)

    app = FastAPI(title="mvvton try-on service", version=mvvton.__version__, lifespan=lifespan)
    app.state.store, app.state.dispatcher, app.state.metrics, app.state.config = store, dispatcher, metrics, config

    # -- errors: one shape for every status ------------------------------------------------------------------

    def error_response(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content=error_body(error, message, request_id_var.get()),
                            headers=headers)  # fmt: skip

    @app.exception_handler(MVVTONError)
    async def library_error(request: Request, error: MVVTONError) -> JSONResponse:
        headers = {}
        if isinstance(error, QueueFullError):
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, UnauthorizedError):
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(status_code_for(error), type(error).__name__, str(error), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        name = "UploadTooLargeError" if error.status_code == 413 else status_error_name(error.status_code)
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no endpoint {request.url.path}; see /docs for the API"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
        return error_response(error.status_code, name, message, getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
            problems.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
        return error_response(422, "ValidationError", "; ".join(problems) or "invalid request")

    # -- helpers ---------------------------------------------------------------------------------------------

    async def read_photos(uploads: dict[str, UploadFile | None]) -> dict[str, bytes]:
        photos = {}
        for name, upload in uploads.items():
            if upload is None:
                continue
            data = await upload.read()
            if data:
                await run_in_threadpool(check_photo, data, name, config.max_image_pixels)
                photos[name] = data
        return photos

    async def submit(uploads: dict, params: JobParameters, request: Request) -> JobRecord:
        params.check(config.max_steps)
        photos = await read_photos(uploads)
        try:
            record = await run_in_threadpool(
                store.create_job, photos, params.to_dict(), total_steps=params.steps, max_queued=config.max_queued,
                request_id=request_id_var.get(),
            )  # fmt: skip
        except QueueFullError as full:
            metrics.rejected.inc()
            workers = await run_in_threadpool(lambda: dispatcher.workers)
            full.retry_after = metrics.retry_after(config.max_queued, workers)
            raise QueueFullError(f"{config.max_queued} jobs are waiting, the queue's bound; retry after "
                                 f"{full.retry_after} s", retry_after=full.retry_after) from None  # fmt: skip
        metrics.submitted.inc()
        await run_in_threadpool(dispatcher.submitted, record)
        logger.info("job %s: queued at position %s", record.id, record.position)
        return record

    async def get_record(job_id: str) -> JobRecord:
        return await run_in_threadpool(store.get, job_id)

    async def cancel(job_id: str) -> JobRecord:
        record = await run_in_threadpool(store.request_cancel, job_id)
        await run_in_threadpool(dispatcher.cancel, record)
        logger.info("job %s: cancel requested (%s)", job_id, record.status)
        return record

    def raise_for_unfinished(record: JobRecord) -> None:
        if record.status == "done":
            return
        if record.status == "failed":
            raise JobStateError(f"job {record.id} failed ({record.error}: {record.message}); there is no result")
        raise JobStateError(f"job {record.id} is {record.status}; poll {job_view(record)['status_url']} until done")

    Photo = Annotated[UploadFile, File(description="photo (JPEG/PNG/WebP)")]
    OptionalPhoto = Annotated[UploadFile | None, File(description="garment back product photo (optional)")]
    View = Annotated[str, Form(description="person view: auto, front, side or back")]
    Steps = Annotated[int, Form(description="sampler steps")]
    Seed = Annotated[int, Form(description="random seed")]
    Guidance = Annotated[float, Form(description="classifier-free guidance scale (1 = none, as released)")]

    # -- routes ----------------------------------------------------------------------------------------------

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok" if dispatcher.alive() else "degraded", "version": mvvton.__version__,
                "mode": dispatcher.mode}  # fmt: skip

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def job_form(
        person: Photo,
        garment_front: Photo,
        garment_back: OptionalPhoto = None,
        view: View = "auto",
        steps: Steps = 50,
        seed: Seed = 23,
        guidance_scale: Guidance = 1.0,
    ) -> tuple[dict, JobParameters]:
        """The multipart fields of a job (shared by /v1/jobs and /v1/try-on)."""
        uploads = {"person": person, "garment_front": garment_front, "garment_back": garment_back}
        return uploads, JobParameters(view, steps, seed, guidance_scale)

    JobForm = Annotated[tuple, Depends(job_form)]

    @app.post("/v1/jobs", status_code=202)
    async def submit_job(request: Request, form: JobForm) -> JSONResponse:
        record = await submit(*form, request)
        return JSONResponse(status_code=202, content=job_view(record), headers={"Location": f"/v1/jobs/{record.id}"})

    @app.get("/v1/jobs")
    def list_jobs(limit: Annotated[int, Query(ge=1, le=500)] = 20, status: str | None = None) -> dict:
        return {"jobs": [job_view(record) for record in store.list_jobs(limit, status)]}

    @app.get("/v1/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        return job_view(store.get(job_id))

    @app.get("/v1/jobs/{job_id}/result")
    def job_result(job_id: str) -> FileResponse:
        record = store.get(job_id)
        raise_for_unfinished(record)
        return FileResponse(record.result_path, media_type="image/png", filename=f"{job_id}.png")

    @app.get("/v1/jobs/{job_id}/intermediates")
    def job_intermediates(job_id: str) -> dict:
        record = store.get(job_id)
        raise_for_unfinished(record)
        names = [role.removeprefix("debug:") for role in store.file_roles(job_id, "debug:")]
        return {"id": job_id, "person_view": record.person_view, "routed_garment": record.routed_garment,
                "warnings": record.warnings,
                "images": {name: f"/v1/jobs/{job_id}/intermediates/{name}" for name in names}}  # fmt: skip

    @app.get("/v1/jobs/{job_id}/intermediates/{name}")
    def job_intermediate_image(job_id: str, name: str) -> FileResponse:
        record = store.get(job_id)
        raise_for_unfinished(record)
        path = store.file_path(job_id, f"debug:{name}")
        if path is None:
            names = ", ".join(role.removeprefix("debug:") for role in store.file_roles(job_id, "debug:"))
            raise JobNotFoundError(f"job {job_id} has no intermediate {name!r}; it has: {names}")
        return FileResponse(path, media_type="image/png")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str) -> JSONResponse:
        record = await cancel(job_id)
        return JSONResponse(status_code=200 if record.status == "cancelled" else 202, content=job_view(record))

    @app.post("/v1/try-on")
    async def try_on(
        request: Request,
        form: JobForm,
        timeout: Annotated[float | None, Form(description="seconds to wait before cancelling (504)")] = None,
    ) -> Response:
        wait = config.try_on_timeout if timeout is None else min(float(timeout), config.try_on_timeout)
        if not wait > 0:
            raise InvalidArgumentError(f"timeout must be > 0 seconds, got {timeout}")
        record = await submit(*form, request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not record.finished:
            if await request.is_disconnected():
                logger.info("job %s: client disconnected, cancelling", record.id)
                await cancel(record.id)
                return Response(status_code=499)
            remaining = deadline - loop.time()
            if remaining <= 0:
                await cancel(record.id)
                raise JobTimeoutError(f"job {record.id} did not finish within {wait:g} s and was cancelled; use "
                                      "POST /v1/jobs and poll for long jobs, or ask for fewer steps")  # fmt: skip
            await events.wait(record.id, min(0.5, remaining))
            record = await get_record(record.id)
        if record.status == "failed":
            status = 500 if record.error in SERVER_SIDE_JOB_ERRORS else 422
            return error_response(status, record.error or "InternalError", record.message or "the job failed")
        raise_for_unfinished(record)
        data = await run_in_threadpool(record.result_path.read_bytes)
        headers = {
            "X-MVVTON-Job-ID": record.id,
            "X-MVVTON-Person-View": record.person_view or "",
            "X-MVVTON-Routed-Garment": record.routed_garment or "",
            "X-MVVTON-Seconds": f"{record.finished_at - record.created_at:.2f}",
        }
        return Response(content=data, media_type="image/png", headers=headers)

    # -- middleware (the last added runs first) --------------------------------------------------------------
    app.add_middleware(UploadLimitMiddleware, max_bytes=config.max_upload_bytes, on_bytes=metrics.body_bytes.inc)
    if config.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key)
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Request-ID", "Location", "Retry-After"])  # fmt: skip
    app.add_middleware(RequestContextMiddleware,
                       on_response=lambda method, status: metrics.requests.labels(method, str(status)).inc())  # fmt: skip
    return app
