"""Framework adapters, each an optional extra; this package imports no framework itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from journal.core.state import Message

__all__ = ["Forms", "settled"]

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


class Forms:
    """The metadata mark an adapter puts on a stored message: plain text, or the whole JSON.

    Text is what the audit tools show as is; a framework object with more than a role and a
    text is stored as its JSON, marked so the adapter reads it back as that object.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.text: Mapping[str, Any] = {key: {"form": "text"}}
        self.json: Mapping[str, Any] = {key: {"form": "json"}}
        self.encode = msgspec.json.Encoder().encode

    def is_json(self, message: Message) -> bool:
        """Whether ``message`` holds an object stored as JSON by this adapter."""
        marker = message.metadata.get(self.key)
        return isinstance(marker, Mapping) and marker.get("form") == "json"
