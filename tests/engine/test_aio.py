"""AsyncJournal: the same results and errors as Journal, and the event loop never waits on files."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from journal import (
    ConflictError,
    Journal,
    Message,
    MessageNotFoundError,
    NewMessage,
    SessionNotFoundError,
)
from journal.aio import AsyncJournal
from journal.backends.files import transaction as filetx


def test_constructing_does_no_file_work(root: Path) -> None:
    AsyncJournal(root)
    assert not root.exists()


def test_results_and_errors_are_the_sync_apis(root: Path) -> None:
    async def main() -> None:
        async with AsyncJournal(root, fsync="never") as aj:
            created = await aj.create("s", actor="web")
            message = await aj.add_message("s", "user", "hi", metadata={"k": 1})
            settings = await aj.update_settings("s", {"model": "m"})
            with pytest.raises(ConflictError) as info:
                await aj.add_message("s", "user", "late", expected_version=1)
            assert (info.value.expected, info.value.actual) == (1, 3)
            with pytest.raises(SessionNotFoundError):
                await aj.get("missing")
            with pytest.raises(SessionNotFoundError):
                [e async for e in aj.events("missing")]
            state = await aj.get("s")
            assert (created.version, message.seq, settings.version, state.version) == (1, 2, 3, 3)
            assert [e.seq async for e in aj.events("s", after=1)] == [2, 3]
            assert (await aj.replay("s", at=2)).messages[0].content == "hi"
            assert await aj.sessions() == ["s"]
            assert await aj.exists("s")
            assert (await aj.verify()).ok
            assert (await aj.head("s")).seq == 3
            assert [c.seq for c in await aj.compact("s")] == [3]
            assert not (await aj.repair("s", dry_run=True)).changed
            await aj.delete("s")
            assert not await aj.exists("s")

    asyncio.run(main())
    with Journal(root) as journal:
        assert not journal.exists("s")


def test_the_event_loop_keeps_running_while_a_write_waits_on_the_disk(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow disk: every fsync takes 0.3 s. A ticker on the same loop must keep ticking
    # while the append waits; with the write on the loop it would not tick at all.
    real_sync = filetx._sync

    def slow_sync(fd: int) -> None:
        time.sleep(0.3)
        real_sync(fd)

    async def main() -> tuple[int, int]:
        aj = AsyncJournal(root, fsync="always")
        await aj.create("s")
        monkeypatch.setattr(filetx, "_sync", slow_sync)
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        message = await aj.add_message("s", "user", "slowly")
        done.set()
        await task
        await aj.close()
        return ticks, message.seq

    ticks, seq = asyncio.run(main())
    assert seq == 2
    assert ticks >= 5, f"the loop ticked {ticks} times during a 0.3 s write"


def test_one_async_journal_from_several_loops_and_threads(root: Path) -> None:
    aj = AsyncJournal(root, fsync="never")
    asyncio.run(aj.create("s"))
    errors: list[BaseException] = []

    def thread(name: str) -> None:
        async def main() -> None:
            for i in range(30):
                await aj.add_message("s", "user", f"{name}:{i}")

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(f"t{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors

    async def check() -> list[str]:
        return [m.content async for m in _messages(aj)]

    contents = asyncio.run(check())
    asyncio.run(aj.close())
    assert len(contents) == 90
    for k in range(3):  # each thread's own order is kept
        own = [c for c in contents if c.startswith(f"t{k}:")]
        assert own == [f"t{k}:{i}" for i in range(30)]


async def _messages(aj: AsyncJournal) -> AsyncIterator[Message]:
    for message in (await aj.get("s")).messages:
        yield message


def test_events_stream_in_batches_across_many_events(root: Path) -> None:
    with Journal(root, fsync="never") as journal:
        journal.create("s")
        for i in range(600):
            journal.add_message("s", "user", str(i))

    async def main() -> list[int]:
        async with AsyncJournal(root) as aj:
            return [e.seq async for e in aj.events("s")]

    assert asyncio.run(main()) == list(range(1, 602))


def test_sharing_a_journal_rejects_options(root: Path) -> None:
    with Journal(root) as journal:
        assert AsyncJournal(journal).journal is journal
        with pytest.raises(ValueError, match="options"):
            AsyncJournal(journal, fsync="never")


def test_message_writes_as_coroutines(root: Path) -> None:
    async def main() -> None:
        async with AsyncJournal(root, fsync="never") as aj:
            await aj.create("s")
            first = await aj.add_message("s", "user", "secret")
            second = await aj.add_message("s", "user", "front", before=first.id)
            added = await aj.add_messages("s", [NewMessage(role="assistant", content="a")])
            edited = await aj.edit_message("s", second.id, "front, edited", actor="ed")
            popped = await aj.pop_message("s")
            removed = await aj.remove_message("s", second.id)
            redacted = await aj.redact_message("s", first.id, reason="asked", actor="dpo")
            state = await aj.get("s")
            with pytest.raises(MessageNotFoundError):
                await aj.remove_message("s", second.id)
            assert (edited.content, popped.id, removed.id) == ("front, edited", added[0].id, second.id)
            assert [(m.content, m.redacted) for m in state.messages] == [("", True)]
            assert state.messages[0] == redacted
            assert [e.type async for e in aj.events("s", after=6)] == ["message_removed", "message_redacted"]

    asyncio.run(main())
