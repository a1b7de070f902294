"""`mvvton serve`: the HTTP try-on service (FastAPI + uvicorn; `pip install 'mvvton[serve]'`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `serve` and `worker`: what model to load and its per-photo limit."""
    from mvvton.serving.jobs import MAX_IMAGE_PIXELS

    parser.add_argument("--model", default=None, help="local pipeline folder (default: the embedded default model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-image-pixels", type=int, default=MAX_IMAGE_PIXELS, help="per-photo decoded pixels")


def register(subparsers: argparse._SubParsersAction) -> None:
    from mvvton.serving.app import MAX_UPLOAD_BYTES, ServiceConfig

    defaults = ServiceConfig(api_key=None)
    parser = subparsers.add_parser("serve", help="serve the try-on jobs API over HTTP (docs/usage.md, Service)")
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--store", default=None, help="job table + file store folder (default ~/.cache/mvvton/service)"
    )
    parser.add_argument("--queue", default=None, help="redis://HOST:PORT/DB: run jobs on `mvvton worker` processes")
    parser.add_argument("--queue-name", default=defaults.queue_name, help="RQ queue name (same as the workers')")
    parser.add_argument("--workers", type=int, default=1, help="embedded worker threads (one pipeline each)")
    parser.add_argument("--max-queued", type=int, default=defaults.max_queued, help="queue bound (then 429)")
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_BYTES / 1024**2, help="request body limit")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--retention-hours", type=float, default=defaults.retention_seconds / 3600)
    parser.add_argument("--max-store-gb", type=float, default=defaults.max_store_bytes / 1024**3)
    parser.add_argument("--try-on-timeout", type=float, default=defaults.try_on_timeout, help="seconds")
    parser.add_argument("--api-key", default=None, help="require this key on /v1/* (default: $MVVTON_API_KEY)")
    parser.add_argument("--cors-origin", action="append", default=[], help="allowed CORS origin (repeatable)")
    parser.add_argument(
        "--dead-worker-grace", type=float, default=defaults.dead_worker_grace,
        help="with --queue: seconds without a worker heartbeat before its running job is queued again",
    )  # fmt: skip
    parser.add_argument(
        "--ui", action="store_true",
        help="also serve the try-on web page at /ui (needs the `ui` extra; it loads its own copy of the model and "
        "shows the service's recent jobs; not covered by --api-key)",
    )  # fmt: skip
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mvvton.serving.app import ServiceConfig, create_app
    from mvvton.serving.middleware import configure_logging

    try:
        import uvicorn
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the service needs uvicorn: pip install 'mvvton[serve]'") from error
    configure_logging()
    overrides = {"api_key": args.api_key} if args.api_key else {}
    config = ServiceConfig(
        store_dir=Path(args.store) if args.store else None, queue_url=args.queue, queue_name=args.queue_name,
        device=args.device, workers=args.workers, max_upload_bytes=int(args.max_upload_mb * 1024**2),
        max_image_pixels=args.max_image_pixels, max_steps=args.max_steps, max_queued=args.max_queued,
        retention_seconds=args.retention_hours * 3600, max_store_bytes=int(args.max_store_gb * 1024**3),
        try_on_timeout=args.try_on_timeout, cors_origins=tuple(args.cors_origin),
        dead_worker_grace=args.dead_worker_grace, **overrides,
    )  # fmt: skip
    app = create_app(args.model, config=config)
    if args.ui:
        from mvvton.cli.demo import DEFAULT_MODEL_DIR
        from mvvton.ui.app import mount_ui

        mount_ui(app, model_path=args.model or DEFAULT_MODEL_DIR, job_store=app.state.store, device=args.device)
    # keep-alive longer than clients' usual poll gaps, so a reused connection is rarely closed under them
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=75)
    return 0
