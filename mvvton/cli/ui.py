"""`mvvton ui`: the try-on web page (Gradio; `pip install 'mvvton[ui]'`), offline."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the try-on web page (person + garment photos -> result)")
    parser.add_argument("--model", default=None, help="local pipeline folder (default: the embedded demo model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-steps", type=int, default=200, help="largest number of sampling steps accepted")
    parser.set_defaults(func=_ui)


def _ui(args: argparse.Namespace) -> int:
    from mvvton.cli import CLIError

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    if args.max_steps < 1:
        raise CLIError(f"--max-steps must be >= 1, got {args.max_steps}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from local folders only
    from mvvton.ui import build_demo, launch_kwargs

    demo = build_demo(model_path=args.model, device=args.device, max_steps=args.max_steps)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, share=False, inbrowser=False, **launch_kwargs()
    )
    return 0
