"""A LangGraph chat whose every checkpoint lives in a journal.

Run it from the repository root (offline: a scripted model answers)::

    python -m examples.langgraph_chat chat-data

It drives a one-node ``StateGraph`` (the conversation in an ``add_messages`` channel)
through two turns on thread ``user-123``, travels back to the end of the first turn, forks
from there with ``update_state`` and goes on along the fork, printing the state at each step.
Then it prints what the journal holds: ``journal show user-123`` (the conversation as text)
and ``journal verify`` (every checkpoint in the hash chain). Run it again on the same folder,
from another process, and the thread goes on where it stopped.

Use your own model with ``build_graph(model)``: any LangChain chat model.
"""

from __future__ import annotations

from .graph import State, build_graph, tour

__all__ = ["State", "build_graph", "tour"]
