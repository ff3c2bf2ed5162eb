"""``JournalSaver``: LangGraph's ``BaseCheckpointSaver`` on a journal (see the package docstring)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from journal.core import events as ev
from journal.core.commands import NewMessage
from journal.core.events import thaw
from journal.errors import SessionNotFoundError
from journal.integrations import settled
from journal.integrations.langchain import stored_message
from journal.integrations.langgraph.index import (
    CACHED_THREADS,
    KEY,
    ROLE,
    Refs,
    Saved,
    Thread,
    Typed,
    added_event,
    apply,
    content_of,
    decoded,
    encode,
    is_messages,
    mentions,
    ref,
    said,
    typed,
    untyped,
)
from journal.integrations.shared import JournalArg, adapter_journal

__all__ = ["JournalSaver"]


class JournalSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a journal: each thread one session.

    Constructing one does no file work. Every method is safe from several threads; several
    processes with a saver each on the same folder or database see each other's writes.

    Args:
        journal: a ``Journal`` or ``AsyncJournal`` (yours to close), or a folder or
            ``postgresql://`` URL (the process's shared Journal on it).
        serde: LangGraph's serializer for values that are not messages (default
            ``JsonPlusSerializer()``, which never pickles).

    Raises:
        TypeError: no journal, or a value of another type.
        InvalidValueError: an empty path, or a URL no backend serves.
    """

    def __init__(self, journal: JournalArg | None = None, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.journal, _ = adapter_journal("JournalSaver", journal)
        self._lock = threading.RLock()
        self._threads: OrderedDict[str, Thread] = OrderedDict()

    # -- writes ---------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint: its new messages and its bookkeeping (hidden from the visible
        conversation) in one journal write.

        Only the channels in ``new_versions`` are stored; the others are found under the
        version an earlier checkpoint stored them with.
        """
        conf = config["configurable"]
        thread_id = conf["thread_id"]
        sid = str(thread_id)
        ns = str(conf.get("checkpoint_ns", ""))
        values = checkpoint["channel_values"]
        skeleton = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        with self._lock:
            thread = self._thread(sid)
            fresh: builtins.list[BaseMessage] = []  # messages new in this write, in order
            placed: dict[int, int] = {}  # id() of such a message -> its index in ``fresh``
            refs: dict[str, builtins.list[int]] = {}
            blobs: dict[str, builtins.list[str]] = {}
            for channel in new_versions:
                if channel not in values:
                    continue
                value = values[channel]
                if is_messages(value):
                    refs[channel] = [ref(thread, fresh, placed, m) for m in value]
                else:
                    blobs[channel] = typed(self.serde.dumps_typed(value))
            # A new message's ref is its offset from the bookkeeping message, last in the write.
            count = len(fresh)
            for channel, seqs in refs.items():
                refs[channel] = [s if s > 0 else -s - 1 - count for s in seqs]
            stored_metadata = get_checkpoint_metadata(config, metadata)
            stored_metadata.pop("writes", None)  # type: ignore[typeddict-item]
            content = encode({"metadata": typed(self.serde.dumps_typed(stored_metadata)), "values": blobs})
            marker = {
                "kind": "checkpoint",
                "ns": ns,
                "id": checkpoint["id"],
                "parent": conf.get("checkpoint_id"),
                "checkpoint": skeleton,
                "versions": dict(new_versions),
                "messages": refs,
            }
            self._write(sid, thread, marker, content.decode(), fresh)
        return {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for a checkpoint (one write, its bookkeeping hidden).

        As in LangGraph's own savers, a write already stored for the same task and index is
        kept (special channels, such as errors and interrupts, are replaced).
        """
        conf = config["configurable"]
        sid = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = str(conf["checkpoint_id"])
        with self._lock:
            thread = self._thread(sid)
            existing = thread.writes.get((ns, cid), {}) if thread is not None else {}
            idxs: builtins.list[int] = []
            channels: builtins.list[str] = []
            values: builtins.list[builtins.list[str]] = []
            for i, (channel, value) in enumerate(writes):
                idx = WRITES_IDX_MAP.get(channel, i)
                if idx >= 0 and (task_id, idx) in existing:
                    continue
                idxs.append(idx)
                channels.append(channel)
                values.append(typed(self.serde.dumps_typed(value)))
            if not idxs:
                return
            marker = {
                "kind": "writes",
                "ns": ns,
                "id": cid,
                "task": task_id,
                "path": task_path,
                "idx": idxs,
                "channels": channels,
            }
            self._write(sid, thread, marker, encode({"values": values}).decode())

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's session, its whole log with it (nothing if there is none)."""
        sid = str(thread_id)
        with self._lock:
            self._threads.pop(sid, None)
            with contextlib.suppress(SessionNotFoundError):
                self.journal.delete(sid)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Forget the checkpoints (and their writes) of these runs, in every thread.

        Reads every session of the journal once (later calls catch up on new events only).
        """
        runs = set(run_ids)
        if not runs:
            return
        with self._lock:
            for sid in list(self.journal.sessions()):
                thread = self._thread(sid)
                if thread is None:
                    continue
                gone = [
                    [ns, cid]
                    for ns, saved in thread.checkpoints.items()
                    for cid, one in saved.items()
                    if self._metadata(one).get("run_id") in runs
                ]
                if gone:
                    self._write(sid, thread, {"kind": "delete", "checkpoints": gone}, "")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and pending write of one thread to another, oldest first."""
        source = str(source_thread_id)
        with self._lock:
            thread = self._thread(source)
            if thread is None:
                return
            items = [
                (ns, cid, self._tuple(thread, source, ns, cid), dict(thread.writes.get((ns, cid), {})))
                for ns, saved in thread.checkpoints.items()
                for cid in sorted(saved)
            ]
            for ns, cid, tup, writes in items:
                config: RunnableConfig = {
                    "configurable": {"thread_id": target_thread_id, "checkpoint_ns": ns}
                }
                if tup.parent_config is not None:
                    config["configurable"]["checkpoint_id"] = tup.parent_config["configurable"][
                        "checkpoint_id"
                    ]
                checkpoint = tup.checkpoint
                self.put(config, checkpoint, tup.metadata, dict(checkpoint["channel_versions"]))
                tasks: dict[tuple[str, str], builtins.list[tuple[int, str, Typed]]] = {}
                for (task, idx), (_, channel, value, path) in writes.items():
                    tasks.setdefault((task, path), []).append((idx, channel, value))
                for (task, path), rows in tasks.items():
                    marker = {
                        "kind": "writes",
                        "ns": ns,
                        "id": cid,
                        "task": task,
                        "path": path,
                        "idx": [r[0] for r in rows],
                        "channels": [r[1] for r in rows],
                    }
                    content = encode({"values": [typed(r[2]) for r in rows]}).decode()
                    self._write(str(target_thread_id), self._thread(str(target_thread_id)), marker, content)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Forget all but the newest checkpoint of each namespace (``"keep_latest"``), or all
        of them (``"delete"``), in each thread; the log keeps them.

        Raises:
            ValueError: another strategy.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"prune: unknown strategy {strategy!r} (keep_latest or delete)")
        with self._lock:
            for thread_id in thread_ids:
                sid = str(thread_id)
                thread = self._thread(sid)
                if thread is None:
                    continue
                gone = [
                    [ns, cid]
                    for ns, saved in thread.checkpoints.items()
                    for cid in saved
                    if strategy == "delete" or cid != max(saved)
                ]
                if gone:
                    self._write(sid, thread, {"kind": "delete", "checkpoints": gone}, "")

    def redact_message(
        self, thread_id: str, message_id: str, *, reason: str, actor: str | None = None
    ) -> builtins.list[str]:
        """Erase a conversation message's words from the thread: the message itself and every
        bookkeeping message whose values repeat them (the graph's input, a node's pending
        writes), with ``Journal.redact_message``; return the ids of the messages erased.

        The checkpoints stay readable: the message reads back blanked, and a checkpoint whose
        bookkeeping was erased loses its metadata and the values that repeated the words
        (an input checkpoint its input, a task its pending writes).

        Raises:
            SessionNotFoundError: no such thread.
            MessageNotFoundError: no such message in it.
            InvalidValueError: an empty reason.
        """
        sid = str(thread_id)
        with self._lock:
            needles: builtins.list[str] = []
            notes: builtins.list[ev.MessageAdded] = []
            for event in self.journal.events(sid):
                if not isinstance(event, ev.MessageAdded):
                    continue
                if event.message_id == message_id:
                    needles = said(event)
                elif event.role == ROLE and event.redacted_by is None and event.content:
                    notes.append(event)
            erased = [message_id]
            self.journal.redact_message(sid, message_id, reason=reason, actor=actor)
            for note in notes if needles else ():
                if any(mentions(value, needles) for value in self._values_of(note)):
                    self.journal.redact_message(sid, note.message_id, reason=reason, actor=actor)
                    erased.append(note.message_id)
            return erased

    def _values_of(self, note: ev.MessageAdded) -> Iterator[Any]:
        """Every value a bookkeeping message's content holds, deserialized."""
        body = content_of(note.content)
        stored = [body.get("metadata")]
        values = body.get("values")
        stored += list(values.values()) if isinstance(values, dict) else list(values or ())
        for one in stored:
            typed = untyped(one)
            if typed is not None:
                yield self.serde.loads_typed(typed)

    # -- reads ----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``checkpoint_id`` names, else the newest of the namespace; None if
        there is none."""
        conf = config["configurable"]
        sid = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        with self._lock:
            thread = self._thread(sid)
            if thread is None:
                return None
            saved = thread.checkpoints.get(ns, {})
            cid = get_checkpoint_id(config)
            if cid is None:
                if not saved:
                    return None
                cid = max(saved)
            elif cid not in saved:
                return None
            return self._tuple(thread, conf["thread_id"], ns, cid)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of one thread (``config``) or of all, one namespace if
        ``config`` names it, those whose metadata has every ``filter`` item, those before
        ``before``'s checkpoint, at most ``limit``."""
        return iter(self._listed(config, filter, before, limit))

    def _listed(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[CheckpointTuple]:
        conf = config["configurable"] if config else {}
        only_ns = conf.get("checkpoint_ns")
        only_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        out: builtins.list[CheckpointTuple] = []
        if limit is not None and limit <= 0:
            return out
        with self._lock:
            thread_ids = [conf["thread_id"]] if "thread_id" in conf else list(self.journal.sessions())
            for thread_id in thread_ids:
                thread = self._thread(str(thread_id))
                if thread is None:
                    continue
                found = [
                    (cid, ns)
                    for ns, saved in thread.checkpoints.items()
                    if only_ns is None or ns == only_ns
                    for cid in saved
                    if (only_id is None or cid == only_id) and (before_id is None or cid < before_id)
                ]
                for cid, ns in sorted(found, reverse=True):
                    if filter:
                        metadata = self._metadata(thread.checkpoints[ns][cid])
                        if any(metadata.get(k) != v for k, v in filter.items()):
                            continue
                    out.append(self._tuple(thread, thread_id, ns, cid))
                    if limit is not None and len(out) >= limit:
                        return out
        return out

    # -- async twins ----------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple`` in a worker thread."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """``list`` in a worker thread."""
        for item in await asyncio.to_thread(self._listed, config, filter, before, limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """``put`` in a worker thread (a cancelled call still waits for its write)."""
        return await settled(lambda: self.put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """``put_writes`` in a worker thread."""
        await settled(lambda: self.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """``delete_thread`` in a worker thread."""
        await settled(lambda: self.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """``delete_for_runs`` in a worker thread."""
        await settled(lambda: self.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """``copy_thread`` in a worker thread."""
        await settled(lambda: self.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``prune`` in a worker thread."""
        await settled(lambda: self.prune(thread_ids, strategy=strategy))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: a counter with a random suffix, as LangGraph's own
        savers use, so that two forks from one checkpoint never store different values under
        one version."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- the index ------------------------------------------------------------------------

    def _write(
        self,
        sid: str,
        thread: Thread | None,
        marker: dict[str, Any],
        content: str,
        fresh: Sequence[BaseMessage] = (),
    ) -> None:
        """Append the ``fresh`` messages and the bookkeeping message in one write (the latter
        hidden: recorded, never shown), and fold them into ``thread`` when nobody else wrote
        meanwhile."""
        batch = [stored_message(i, m) for i, m in enumerate(fresh)]
        batch.append(NewMessage(role=ROLE, content=content, metadata={KEY: marker}, hidden=True))
        try:
            added = self.journal.add_messages(sid, batch)
        except SessionNotFoundError:
            self.journal.get_or_create(sid)
            added = self.journal.add_messages(sid, batch)
        # Folding our own events here spares reading them back: Journal.events reads a
        # session's history from its start.
        if thread is not None and added[0].seq == thread.seq + 1:
            for m in added:
                apply(thread, added_event(m))
            for given, stored in zip(fresh, added, strict=False):
                thread.same[stored.seq] = given
            thread.seq = added[-1].seq + 1  # the bookkeeping message's removal

    def _thread(self, sid: str) -> Thread | None:
        """The thread's index caught up with its session; None if there is no session."""
        try:
            session = self.journal.get(sid)
        except SessionNotFoundError:
            self._threads.pop(sid, None)
            return None
        thread = self._threads.get(sid)
        # Another created_at, or fewer events: the session was deleted and made anew.
        if thread is None or thread.created_at != session.created_at or thread.seq > session.version:
            thread = Thread(session.created_at)
        self._threads[sid] = thread
        self._threads.move_to_end(sid)
        while len(self._threads) > CACHED_THREADS:
            self._threads.popitem(last=False)
        if thread.seq < session.version:
            for event in self.journal.events(sid, after=thread.seq):
                apply(thread, event)
                thread.seq = event.seq
        return thread

    def _metadata(self, saved: Saved) -> dict[str, Any]:
        if saved.metadata is None:
            return {}
        value = self.serde.loads_typed(saved.metadata)
        return value if isinstance(value, dict) else {}

    def _tuple(self, thread: Thread, thread_id: Any, ns: str, cid: str) -> CheckpointTuple:
        saved = thread.checkpoints[ns][cid]
        skeleton = thaw(saved.skeleton)
        values: dict[str, Any] = {}
        for channel, version in skeleton.get("channel_versions", {}).items():
            blob = thread.blobs.get((ns, channel, version))
            if isinstance(blob, Refs):
                values[channel] = [
                    decoded(thread, seq).model_copy() for seq in blob.seqs if seq in thread.transcript
                ]
            elif blob is not None:
                values[channel] = self.serde.loads_typed(blob)
        writes = sorted(
            thread.writes.get((ns, cid), {}).items(), key=lambda kv: writes_sort_key(kv[1][3], *kv[0])
        )
        pending: builtins.list[PendingWrite] = [
            (task, channel, self.serde.loads_typed(value)) for (task, _), (_, channel, value, _) in writes
        ]
        parent = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": saved.parent}}
            if saved.parent
            else None
        )
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint=cast(Checkpoint, {**skeleton, "channel_values": values}),
            metadata=self._metadata(saved),  # type: ignore[arg-type]
            parent_config=parent,  # type: ignore[arg-type]
            pending_writes=pending,
        )
