"""`mvvton worker`: run try-on jobs from the Redis queue of `mvvton serve --queue redis://...` (RQ)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from mvvton.cli.serve import add_model_arguments
    from mvvton.serving.jobs import DEFAULT_QUEUE_NAME, HEARTBEAT_SECONDS

    parser = subparsers.add_parser("worker", help="run jobs of `mvvton serve --queue redis://...`")
    parser.add_argument("--queue", required=True, help="redis://HOST:PORT/DB, the same as the API's --queue")
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE_NAME)
    add_model_arguments(parser)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument(
        "--heartbeat-seconds", type=float, default=HEARTBEAT_SECONDS,
        help="lifetime of a running job's heartbeat key; the API re-queues a job whose heartbeat is gone",
    )  # fmt: skip
    parser.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    from mvvton.serving.jobs import TryOnRunner
    from mvvton.serving.middleware import configure_logging
    from mvvton.serving.workers import run_worker

    configure_logging()

    def load() -> TryOnRunner:
        return TryOnRunner.from_pretrained(args.model, device=args.device, max_image_pixels=args.max_image_pixels)

    run_worker(
        args.queue,
        runner_factory=load,
        queue_name=args.queue_name,
        burst=args.burst,
        heartbeat_seconds=args.heartbeat_seconds,
    )
    return 0
