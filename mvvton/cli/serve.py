"""`mvvton serve`: the HTTP try-on service (FastAPI + uvicorn; `pip install 'mvvton[serve]'`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve POST /v1/try-on over HTTP")
    parser.add_argument("--model", default=None, help="local pipeline folder (default: the embedded demo model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mvvton.cli.demo import DEFAULT_MODEL_DIR
    from mvvton.serving.app import create_app

    try:
        import uvicorn
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the service needs uvicorn: pip install 'mvvton[serve]'") from error
    app = create_app(args.model or DEFAULT_MODEL_DIR, device=args.device)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
