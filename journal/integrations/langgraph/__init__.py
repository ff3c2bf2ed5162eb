"""LangGraph: ``JournalSaver``, a checkpointer that keeps each thread in a journal session.

Install with ``pip install "chat-journal[langgraph]"``. The thread ``thread_id`` is the
journal session ``str(thread_id)`` (so ``journal show user-123`` prints thread ``user-123``);
``checkpoint_ns`` and checkpoint ids are kept exactly. Every ``put``, ``put_writes`` and
deletion is one journal write (its bookkeeping hidden in the same write), so the thread's
whole history is in the session's log, chained and checked by ``journal verify``.

What goes where, and why:

* **The conversation.** Each LangChain message a channel holds (a list of messages, such as
  the ``messages`` channel of ``add_messages``) is stored once, the first time a checkpoint
  holds it, as an ordinary journal message written by the LangChain adapter
  (``journal.integrations.langchain``): the standard role and the words in the content,
  LangChain's form without the words in the metadata. ``journal show`` therefore prints the
  conversation, and ``Journal.redact_message`` erases a message's words everywhere: every
  checkpoint holding it then reads it back blanked.
* **The bookkeeping.** Each checkpoint, set of pending writes or deletion is one more message
  of role ``langgraph``, written in the same write as the conversation's new messages and
  hidden (``NewMessage(hidden=True)``: removed from view by that same write; ``journal log``
  and ``events`` keep it, ``journal show`` does not print it). Its metadata, sealed in the
  chain, holds what no user said: namespace, checkpoint id, parent id, channel versions, ``versions_seen``,
  pending-write task ids and channels, and which conversation messages each messages
  channel holds (by seq). Its content, erasable, holds the rest as LangGraph's serializer
  writes it (``serde.dumps_typed``, base64): the checkpoint's metadata, the values of the
  other channels and the pending writes' values. The default serializer is LangGraph's
  ``JsonPlusSerializer`` without pickle; pass ``serde=`` to choose another (with
  ``pickle_fallback=True`` only if you accept pickle).

Reads use an index per thread, folded from the session's events and kept in memory. A
saver folds its own writes into it as it makes them; when the session holds events another
process wrote (its version moved on), the saver reads them with ``Journal.events``, which
streams the session's history from its start. Deleting a thread deletes its session; ``prune`` and
``delete_for_runs`` append a deletion instead (the log keeps the pruned checkpoints for
audit until the session is compacted with retention or deleted).
"""

from __future__ import annotations

from journal.integrations.langgraph.index import ROLE
from journal.integrations.langgraph.saver import JournalSaver

__all__ = ["ROLE", "JournalSaver"]
