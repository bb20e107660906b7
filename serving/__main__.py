"""`python -m serving --models DIR [--host 127.0.0.1] [--port 8000] [limits]`: serve the
capstone's models on uvicorn until SIGINT or SIGTERM.

On either signal the server stops accepting connections; the streams in flight get --grace
seconds to finish, then end with a final line saying the server is shutting down; the process
then exits 0. A missing or unreadable model folder is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys

from serving.app import Limits, ModelError, create_app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="capstone-models",
                        help="the folder with language.safetensors and/or vision.safetensors")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--slots", type=int, default=defaults.slots, help="streams generated together")
    parser.add_argument("--queue", type=int, default=defaults.queue, help="requests waiting for a slot; beyond: 503")
    parser.add_argument("--max-prompt-chars", type=int, default=defaults.max_prompt_chars)
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    parser.add_argument("--deadline", type=float, default=defaults.deadline, help="seconds a stream may last")
    parser.add_argument("--grace", type=float, default=defaults.grace,
                        help="seconds the streams in flight get to finish on SIGTERM/SIGINT")
    parser.add_argument("--int8", action="store_true", help="serve int8 weights (module 17)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    try:
        limits = Limits(max_prompt_chars=args.max_prompt_chars, max_new_tokens=args.max_new_tokens,
                        deadline=args.deadline, slots=args.slots, queue=args.queue, grace=args.grace,
                        int8=args.int8)
        app = create_app(args.models, limits=limits)
    except (ModelError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            if app.state.language is not None:
                app.state.language.scheduler.begin_shutdown()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=int(args.grace) + 5)
    # uvicorn re-raises the signal it caught once it has shut down; a stop asked for is a clean exit
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
