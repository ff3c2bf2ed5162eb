"""``journal serve``: check where the viewer may listen, then run it under uvicorn.

The viewer shows every conversation of the journal, so it listens on 127.0.0.1 unless told
otherwise, and refuses any other address without a token (or an explicit
``--insecure-no-token``, for a network that is already private).
"""

from __future__ import annotations

import argparse
import os

from journal.cli.open import open_journal, root_location
from journal.cli.render import UsageError
from journal.web.app import create_app
from journal.web.security import LOOPBACK_NAMES, is_loopback

__all__ = ["TOKEN_ENV", "check_bind", "cmd_serve"]

# Read when --token is not given: a token on the command line shows in ps(1).
TOKEN_ENV = "JOURNAL_WEB_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose the journal beyond this machine without a token.

    Raises:
        UsageError: ``host`` is not a loopback address, and neither a token nor ``insecure``.
    """
    if token is not None and not token:
        raise UsageError("--token must not be empty")
    if not is_loopback(host) and token is None and not insecure:
        raise UsageError(
            f"--host {host} would show every conversation to the network: give --token "
            f"(or ${TOKEN_ENV}), or --insecure-no-token if the network is private"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the viewer until interrupted; returns the exit code."""
    import uvicorn

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    check_bind(args.host, token, args.insecure_no_token)
    location = args.url or root_location(args)
    with open_journal(location) as journal:
        # Without a token, loopback is the only protection: answer only this machine's names.
        hosts = (
            LOOPBACK_NAMES | {args.host.strip("[]").lower()}
            if token is None and is_loopback(args.host)
            else None
        )
        app = create_app(journal, token=token, hosts=hosts)
        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(f"journal: serving {journal.root} at http://{shown}:{args.port}/ (Ctrl-C stops)", flush=True)
        # Open event streams would hold a stopping server for minutes: they reconnect anyway.
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
    return 0
