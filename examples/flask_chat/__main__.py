"""Serve the chat app with werkzeug: ``python -m examples.flask_chat DATA_DIR``.

``--processes N`` forks a worker per request, up to N at once, all on one data folder; the
default serves requests from threads of one process. For production use a real server
(``gunicorn -w 4 'examples.flask_chat:create_app("chat-data")'``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from werkzeug.serving import run_simple

from .app import create_app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.flask_chat", description=__doc__)
    parser.add_argument("data_dir", help="the journal folder (created on the first write)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1, threaded)")
    parser.add_argument("--fsync", default="always", choices=["always", "interval", "never"])
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    app = create_app(args.data_dir, fsync=args.fsync)
    run_simple(args.host, args.port, app, threaded=args.processes == 1, processes=args.processes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
