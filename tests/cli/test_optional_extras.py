"""The CLI works with only the core + `preprocess` extras installed (the README's first command): building the
parser must not import what the `serve` / `ui` / `train` extras bring."""

import subprocess
import sys

# modules of the optional extras (pyproject.toml); a `None` entry in sys.modules makes importing them fail
EXTRA_MODULES = ("prometheus_client", "fastapi", "uvicorn", "multipart", "rq", "redis", "gradio", "tensorboard")


def test_parser_builds_without_the_serving_and_ui_extras():
    code = (
        "import sys\n"
        f"for name in {EXTRA_MODULES!r}: sys.modules[name] = None\n"
        "from mvvton.cli import build_parser\n"
        "parser = build_parser()\n"
        "args = parser.parse_args(['worker', '--queue', 'redis://localhost:6379/0'])\n"
        "assert args.heartbeat_seconds > 0, args\n"
        "print(sorted(parser._subparsers._group_actions[0].choices))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("demo", "serve", "worker"):
        assert f"'{command}'" in result.stdout
