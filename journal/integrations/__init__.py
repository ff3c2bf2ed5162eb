"""Framework adapters, each an optional extra; this package imports no framework itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

__all__ = ["settled"]

_T = TypeVar("_T")


async def settled(fn: Callable[[], _T]) -> _T:
    """Run the write ``fn`` in a worker thread and wait for its outcome despite cancellation.

    A thread cannot be stopped: a write that started lands whether or not its caller was
    cancelled. Waiting for it before re-raising the cancellation means the caller never goes
    on (to retry, or to read what it thinks was not written) while the write is still running.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    try:
        result = task.result()
    except BaseException:
        if cancelled is not None:
            raise cancelled from None
        raise
    if cancelled is not None:
        raise cancelled
    return result
