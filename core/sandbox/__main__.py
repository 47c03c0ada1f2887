"""``python -m core.sandbox --port 8787 [--data DIR]``: a local stand-in for Replicate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.sandbox.engine import SandboxConfig
from core.sandbox.server import serve_forever


def main(argv: list[str] | None = None) -> int:
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(
        prog="python -m core.sandbox",
        description="Serve a local simulation of Replicate's API for demos and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(".data/sandbox"),
        help="folder that keeps the sandbox's state across restarts",
    )
    parser.add_argument(
        "--account", default=defaults.account, help="the account that owns created models"
    )
    parser.add_argument(
        "--training-seconds",
        type=float,
        default=defaults.training_seconds,
        help="how long a training runs",
    )
    parser.add_argument(
        "--prediction-seconds",
        type=float,
        default=defaults.prediction_seconds,
        help="how long a prediction runs",
    )
    args = parser.parse_args(argv)
    config = SandboxConfig(
        account=args.account,
        training_seconds=args.training_seconds,
        prediction_seconds=args.prediction_seconds,
    )
    sys.stderr.write(
        f"Replicate sandbox on http://{args.host}:{args.port} (state in {args.data})\n"
    )
    serve_forever(args.data, host=args.host, port=args.port, config=config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
